package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/user"
)

// teamFor decides the team of a key of type typ that caller c makes (or, for admins,
// moves), from the team asked for (nil: not given):
//
//   - "*" (all teams): admin keys only, by a caller that acts for every team.
//   - a team ID: a caller acting for every team (an admin) may name any existing team;
//     anyone else only a team they act for (their own teams; a key caller, its own team).
//   - "": unbinds the key, by a caller that acts for every team.
//   - not given: an admin key of such a caller acts for all teams; otherwise the caller's one team when it
//     acts for exactly one; no team (refused on every route that checks teams) when it
//     acts for none or for all; a caller of several teams must choose (400).
//
// Refusals are 400 invalid_request.
func (a *API) teamFor(r *http.Request, c caller, typ string, asked *string) (string, error) {
	if asked == nil {
		switch {
		case typ == apikey.Admin && c.allTeams:
			return apikey.AllTeams, nil
		case c.allTeams || len(c.teams) == 0:
			return "", nil
		case len(c.teams) == 1:
			return c.teams[0], nil
		}
		return "", badRequest("team: required: you are a member of several teams ("+strings.Join(c.teams, ", ")+"); choose one", nil)
	}
	t := *asked
	switch {
	case t == "" && c.allTeams:
		// Unbinding: a personal key then acts for no team, an admin key for all.
		return "", nil
	case t == apikey.AllTeams:
		if typ != apikey.Admin {
			return "", badRequest("team: * (all teams) is for admin keys only; a personal key acts for one team", nil)
		}
		if !c.allTeams {
			return "", badRequest("team: only a credential that acts for every team makes keys for all teams", nil)
		}
		return t, nil
	case !user.ValidTeamID(t):
		return "", badRequest(fmt.Sprintf("team: %q is not a team ID", t), nil)
	case c.allTeams:
		if a.o.Teams == nil {
			return "", badRequest("team: this gateway keeps no teams", nil)
		}
		if _, err := a.o.Teams.GetTeam(r.Context(), t); err != nil {
			if errors.Is(err, user.ErrTeamNotFound) {
				return "", badRequest(fmt.Sprintf("team: no team %q", t), err)
			}
			return "", err
		}
		return t, nil
	case !slices.Contains(c.teams, t):
		return "", badRequest(fmt.Sprintf("team: you are not a member of team %q; a key is made for one of its creator's teams", t), nil)
	}
	return t, nil
}
