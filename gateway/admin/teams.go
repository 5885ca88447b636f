package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/authgate/authgate/gateway/apijson"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
)

// teamStore is what the API needs of the teams (user.Store and user.MemStore).
type teamStore interface {
	CreateTeam(ctx context.Context, t user.Team) (user.Team, error)
	GetTeam(ctx context.Context, id string) (user.Team, error)
	ListTeams(ctx context.Context) ([]user.Team, error)
	RenameTeam(ctx context.Context, id, name string) (user.Team, error)
	DeleteTeam(ctx context.Context, id string) ([]string, error)
	AddMember(ctx context.Context, teamID, userID string) (user.User, error)
	RemoveMember(ctx context.Context, teamID, userID string) (user.User, error)
}

// TeamView is a team as the API shows it (docs/openapi.yaml Team). Members (user IDs) are
// shown to admins, on the calls for one team.
type TeamView struct {
	user.Team
	Members []string `json:"members,omitempty"`
}

// TeamFields are the settable fields of team create and rename.
type TeamFields struct {
	ID           *string `json:"id,omitempty"`
	Name         *string `json:"name,omitempty"`
	Organization *string `json:"organization,omitempty"`
}

var errNoTeam = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such team"}

// teamError maps the team store's errors onto answers.
func teamError(err error) error {
	switch {
	case errors.Is(err, user.ErrTeamNotFound):
		return errNoTeam
	case errors.Is(err, user.ErrTeamConflict):
		return &httperr.Error{Status: http.StatusConflict, Code: "conflict", Msg: "a team with this id exists", Err: err}
	}
	return nil
}

func (a *API) teamFail(w http.ResponseWriter, r *http.Request, err error) {
	if te := teamError(err); te != nil {
		var he *httperr.Error
		if !errors.As(err, &he) {
			err = te
		}
	}
	a.fail(w, r, err)
}

func (a *API) createTeam(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.admin() {
		a.fail(w, r, forbidden("managing teams needs admin"))
		return
	}
	var f TeamFields
	if err := apijson.Decode(r, &f); err != nil {
		a.fail(w, r, err)
		return
	}
	t := user.Team{ID: user.NewTeamID()}
	if f.ID != nil {
		t.ID = *f.ID
	}
	if f.Name == nil {
		a.fail(w, r, badRequest("name is required", nil))
		return
	}
	t.Name = strings.TrimSpace(*f.Name)
	if f.Organization != nil {
		t.Organization = *f.Organization
	} else if me, err := a.callerUser(r, c); err == nil {
		t.Organization = me.Organization // the admin's own organisation
	}
	t, err := a.o.Teams.CreateTeam(r.Context(), t)
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	a.auditTeam(r, audit.TeamCreated, t.ID, "", c)
	apijson.Write(w, http.StatusCreated, TeamView{Team: t, Members: []string{}})
}

// callerUser is the user the caller is, when it is one.
func (a *API) callerUser(r *http.Request, c caller) (user.User, error) {
	if !user.IsID(c.subject) {
		return user.User{}, errNoUser
	}
	return a.o.Users.Get(r.Context(), c.subject)
}

// listTeams lists every team to admins, and their own teams to others.
func (a *API) listTeams(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	all, err := a.o.Teams.ListTeams(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]TeamView, 0, len(all))
	for _, t := range all {
		if c.admin() || c.allTeams || slices.Contains(c.teams, t.ID) {
			out = append(out, TeamView{Team: t})
		}
	}
	apijson.Write(w, http.StatusOK, map[string]any{"teams": out})
}

// teamOf is the team named by the path; members of it may read it, admins anything.
func (a *API) teamOf(r *http.Request, c caller) (TeamView, error) {
	id := r.PathValue("id")
	if !user.ValidTeamID(id) || (!c.admin() && !c.allTeams && !slices.Contains(c.teams, id)) {
		return TeamView{}, errNoTeam
	}
	t, err := a.o.Teams.GetTeam(r.Context(), id)
	if err != nil {
		return TeamView{}, err
	}
	v := TeamView{Team: t}
	if c.admin() {
		users, err := a.o.Users.List(r.Context())
		if err != nil {
			return TeamView{}, err
		}
		v.Members = []string{}
		for _, u := range users {
			if slices.Contains(u.Teams, id) {
				v.Members = append(v.Members, u.ID)
			}
		}
	}
	return v, nil
}

func (a *API) getTeam(w http.ResponseWriter, r *http.Request) {
	v, err := a.teamOf(r, callerOf(r))
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	apijson.Write(w, http.StatusOK, v)
}

func (a *API) renameTeam(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.admin() {
		a.fail(w, r, forbidden("managing teams needs admin"))
		return
	}
	var f TeamFields
	if err := apijson.Decode(r, &f); err != nil {
		a.fail(w, r, err)
		return
	}
	if f.ID != nil || f.Organization != nil {
		a.fail(w, r, badRequest("only a team's name changes; its id is what requests name, and members belong to its organisation", nil))
		return
	}
	if f.Name == nil {
		a.fail(w, r, badRequest("name is required", nil))
		return
	}
	t, err := a.o.Teams.RenameTeam(r.Context(), r.PathValue("id"), strings.TrimSpace(*f.Name))
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	a.auditTeam(r, audit.TeamRenamed, t.ID, "", c)
	apijson.Write(w, http.StatusOK, TeamView{Team: t})
}

// deleteTeam deletes a team and ends its memberships; its members' credentials are
// re-read on every replica at once. Keys bound to it stay bound to its ID: they act for
// no existing team.
func (a *API) deleteTeam(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.admin() {
		a.fail(w, r, forbidden("managing teams needs admin"))
		return
	}
	id := r.PathValue("id")
	members, err := a.o.Teams.DeleteTeam(r.Context(), id)
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	for _, m := range members {
		a.userChanged(r, m, UserChange{Access: true})
	}
	a.auditTeam(r, audit.TeamDeleted, id, "", c)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.admin() {
		a.fail(w, r, forbidden("managing teams needs admin"))
		return
	}
	var body struct {
		UserID string `json:"user_id"`
	}
	if err := apijson.Decode(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if !user.IsID(body.UserID) {
		a.fail(w, r, badRequest("user_id: a user ID (usr_…) is required", nil))
		return
	}
	id := r.PathValue("id")
	u, err := a.o.Teams.AddMember(r.Context(), id, body.UserID)
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	a.userChanged(r, u.ID, UserChange{Access: true})
	a.auditTeam(r, audit.TeamMemberAdded, id, u.ID, c)
	apijson.Write(w, http.StatusOK, u)
}

// removeMember ends a membership: the user's tokens and personal keys stop acting for
// the team at once, on every replica.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.admin() {
		a.fail(w, r, forbidden("managing teams needs admin"))
		return
	}
	id, uid := r.PathValue("id"), r.PathValue("user")
	if !user.IsID(uid) {
		a.fail(w, r, errNoUser)
		return
	}
	u, err := a.o.Teams.RemoveMember(r.Context(), id, uid)
	if err != nil {
		a.teamFail(w, r, err)
		return
	}
	a.userChanged(r, u.ID, UserChange{Access: true})
	a.auditTeam(r, audit.TeamMemberRemoved, id, u.ID, c)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) auditTeam(r *http.Request, event, team, userID string, c caller) {
	actor := c.subject
	if actor == "" && c.keyID != "" {
		actor = "key:" + c.keyID
	}
	_ = a.o.Audit.Record(r.Context(), audit.Event{Type: event, Team: team, UserID: userID, Actor: actor,
		ClientIP: clientIP(r), Detail: "team: " + team})
}
