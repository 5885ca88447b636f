package gateway

import (
	"net/http"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/policy"
)

// teamSource is the policy form of a route's team source; nil for none.
func teamSource(ts *config.TeamSource) *policy.TeamSource {
	if ts == nil {
		return nil
	}
	return &policy.TeamSource{Path: ts.Path, Header: ts.Header, Query: ts.Query}
}

// checkTeam enforces a route's team source (routes[].team): the request must name one
// team, once, as a team ID (else 400 malformed_request), and the credential must act for
// it (else 403 team_not_allowed). The team passes upstream as X-Auth-Team. It runs after
// scopes: a credential that may not use the route at all learns nothing about teams.
func (rt *route) checkTeam(next http.Handler) http.Handler {
	ts := teamSource(rt.cfg.Team)
	if ts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		pathValue := ""
		if ts.Path != "" {
			pathValue = r.PathValue(ts.Path) // set by route from the cleaned, matched path
		}
		team, ok := ts.Requested(pathValue, r.Header, r.URL.RawQuery)
		if !ok {
			info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
				Msg: "route " + rt.cfg.Name + " needs the request to name one team, once (" + ts.Describe() + ")"})
			return
		}
		if !policy.HoldsTeam(info.Teams, info.AllTeams, team) {
			info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "team_not_allowed",
				Msg: "this credential does not act for team " + team})
			return
		}
		info.Team = team
		next.ServeHTTP(w, r)
	})
}
