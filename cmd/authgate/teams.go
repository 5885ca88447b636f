package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/user"
)

const teamsUsage = `usage: authgate teams <command> [flags]

commands (admins; list also shows a member their own teams):
  create --name N [--id ID] [--org O]
                        ID is what requests name (a path segment, a header, a query
                        parameter): letters, digits, '.', '_', '-'; default team_…
  list
  show TEAM             the team and, for admins, its members
  rename TEAM --name N
  delete TEAM           its members leave it; keys bound to it act for no team
  add-member TEAM USER  USER is a user ID (usr_…) or an email
  remove-member TEAM USER
                        the user's tokens and personal keys stop acting for TEAM at
                        once, on every replica

connection and output: as for 'authgate users' (--addr, --prefix, --token, --cacert,
--config; -o table|json|yaml, -q, --no-headers)
`

// teamBackend is where the teams commands act: the management API or the store itself.
// Every method but the deletions returns the API's JSON.
type teamBackend interface {
	createTeam(ctx context.Context, f admin.TeamFields) ([]byte, error)
	listTeams(ctx context.Context) ([]byte, error)
	getTeam(ctx context.Context, id string) ([]byte, error)
	renameTeam(ctx context.Context, id, name string) ([]byte, error)
	removeTeam(ctx context.Context, id string) error
	addMember(ctx context.Context, id, userID string) ([]byte, error)
	removeMember(ctx context.Context, id, userID string) error
	userBackend
}

func teamsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, teamsUsage)
		return errors.New("teams: no command")
	}
	cmd, args := args[0], args[1:]
	want := map[string]int{"create": 0, "list": 0, "show": 1, "rename": 1, "delete": 1, "add-member": 2, "remove-member": 2}
	n, known := want[cmd]
	switch {
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, teamsUsage)
		return nil
	case !known:
		fmt.Fprint(stderr, teamsUsage)
		return fmt.Errorf("teams: unknown command %q", cmd)
	}
	fl := flag.NewFlagSet("teams "+cmd, flag.ContinueOnError)
	fl.SetOutput(stderr)
	var kf keysFlags
	kf.register(fl)
	var id, name, org string
	switch cmd {
	case "create":
		fl.StringVar(&id, "id", "", "team ID (default: a new team_…)")
		fl.StringVar(&name, "name", "", "team name (required)")
		fl.StringVar(&org, "org", "", "organisation (default: the admin's own)")
	case "rename":
		fl.StringVar(&name, "name", "", "the new name (required)")
	}
	pos, err := parseInterleaved(fl, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := kf.out.check("teams " + cmd); err != nil {
		return err
	}
	if len(pos) != n {
		return fmt.Errorf("teams %s: want %d argument(s), got %d; see authgate teams help", cmd, n, len(pos))
	}
	if (cmd == "create" || cmd == "rename") && name == "" {
		return fmt.Errorf("teams %s: --name is required", cmd)
	}
	b, err := openTeamBackend(ctx, kf, set, getenv, stderr)
	if err != nil {
		return err
	}
	defer b.close()

	var body []byte
	switch cmd {
	case "create":
		f := admin.TeamFields{Name: &name}
		if set["id"] {
			f.ID = &id
		}
		if set["org"] {
			f.Organization = &org
		}
		body, err = b.createTeam(ctx, f)
	case "list":
		if body, err = b.listTeams(ctx); err != nil {
			return err
		}
		if kf.out.structured() {
			return kf.out.document(stdout, body)
		}
		var l struct {
			Teams []admin.TeamView `json:"teams"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("teams list: unexpected answer: %w", err)
		}
		return printTeamTable(stdout, kf.out, l.Teams)
	case "show":
		body, err = b.getTeam(ctx, pos[0])
	case "rename":
		body, err = b.renameTeam(ctx, pos[0], name)
	case "delete":
		if err := b.removeTeam(ctx, pos[0]); err != nil {
			return err
		}
		switch {
		case kf.out.structured():
			gone, _ := json.Marshal(map[string]any{"id": pos[0], "deleted": true}) // cannot fail
			return kf.out.document(stdout, gone)
		case kf.out.quiet:
			_, err := fmt.Fprintln(stdout, pos[0])
			return err
		}
		_, err := fmt.Fprintf(stdout, "deleted team %s\n", pos[0])
		return err
	case "add-member", "remove-member":
		u, _, err := resolveUser(ctx, b, pos[1])
		if err != nil {
			return err
		}
		if cmd == "remove-member" {
			if err := b.removeMember(ctx, pos[0], u.ID); err != nil {
				return err
			}
			if kf.out.quiet {
				_, err := fmt.Fprintln(stdout, u.ID)
				return err
			}
			_, err := fmt.Fprintf(stdout, "%s (%s) is no longer a member of %s\n", u.ID, u.Email, pos[0])
			return err
		}
		if body, err = b.addMember(ctx, pos[0], u.ID); err != nil {
			return err
		}
		return printUserAnswer(stdout, kf.out, "added to "+pos[0]+":", body)
	}
	if err != nil {
		return err
	}
	if kf.out.structured() {
		return kf.out.document(stdout, body)
	}
	var t admin.TeamView
	if err := json.Unmarshal(body, &t); err != nil {
		return fmt.Errorf("teams %s: unexpected answer: %w", cmd, err)
	}
	if kf.out.quiet {
		_, err := fmt.Fprintln(stdout, t.ID)
		return err
	}
	return printTeam(stdout, t)
}

func printTeamTable(w io.Writer, o output, teams []admin.TeamView) error {
	rows := make([][]string, len(teams))
	for i, t := range teams {
		rows[i] = []string{t.ID, t.Name, orDash(t.Organization), fmtTime(&t.CreatedAt, "-")}
	}
	return o.table(w, []string{"ID", "NAME", "ORGANIZATION", "CREATED"}, rows, "no teams")
}

func printTeam(w io.Writer, t admin.TeamView) error {
	rows := [][2]string{{"id", t.ID}, {"name", t.Name}, {"organization", orDash(t.Organization)},
		{"created at", fmtTime(&t.CreatedAt, "-")}}
	if t.Members != nil {
		rows = append(rows, [2]string{"members", fmtList(t.Members, "none")})
	}
	return fieldLines(w, rows)
}

// openTeamBackend picks the store itself (--config) or the management API.
func openTeamBackend(ctx context.Context, kf keysFlags, set map[string]bool, getenv func(string) string, stderr io.Writer) (teamBackend, error) {
	ub, err := openUserBackend(ctx, kf, set, getenv, stderr)
	if err != nil {
		return nil, err
	}
	switch u := ub.(type) {
	case *remoteUsers:
		return &remoteTeams{remoteUsers: u}, nil
	case *directUsers:
		return &directTeams{directUsers: u}, nil
	}
	return nil, fmt.Errorf("teams: unexpected backend %T", ub)
}

// remoteTeams is the management API's /teams/ calls over HTTP.
type remoteTeams struct{ *remoteUsers }

func teamPath(id string) string { return "/teams/" + url.PathEscape(id) + "/" }

func (r *remoteTeams) createTeam(ctx context.Context, f admin.TeamFields) ([]byte, error) {
	return r.c.do(ctx, http.MethodPost, "/teams/", f)
}

func (r *remoteTeams) listTeams(ctx context.Context) ([]byte, error) {
	return r.c.do(ctx, http.MethodGet, "/teams/", nil)
}

func (r *remoteTeams) getTeam(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodGet, teamPath(id), nil)
}

func (r *remoteTeams) renameTeam(ctx context.Context, id, name string) ([]byte, error) {
	return r.c.do(ctx, http.MethodPatch, teamPath(id), admin.TeamFields{Name: &name})
}

func (r *remoteTeams) removeTeam(ctx context.Context, id string) error {
	_, err := r.c.do(ctx, http.MethodDelete, teamPath(id), nil)
	return err
}

func (r *remoteTeams) addMember(ctx context.Context, id, userID string) ([]byte, error) {
	return r.c.do(ctx, http.MethodPost, teamPath(id)+"members/", map[string]string{"user_id": userID})
}

func (r *remoteTeams) removeMember(ctx context.Context, id, userID string) error {
	_, err := r.c.do(ctx, http.MethodDelete, teamPath(id)+"members/"+url.PathEscape(userID)+"/", nil)
	return err
}

// directTeams works on the teams in the configured Redis store, as an admin would through
// the API; membership changes are announced to running gateways like user changes.
type directTeams struct{ *directUsers }

func teamErr(err error) error {
	switch {
	case errors.Is(err, user.ErrTeamNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such team"}
	case errors.Is(err, user.ErrTeamConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: "a team with this id exists"}
	}
	return userErr(err)
}

func (d *directTeams) createTeam(ctx context.Context, f admin.TeamFields) ([]byte, error) {
	t := user.Team{ID: user.NewTeamID(), Name: *f.Name}
	if f.ID != nil {
		t.ID = *f.ID
	}
	if f.Organization != nil {
		t.Organization = *f.Organization
	}
	t, err := d.users.CreateTeam(ctx, t)
	if err != nil {
		return nil, teamErr(err)
	}
	d.recordTeam(ctx, audit.TeamCreated, t.ID, "")
	return json.Marshal(admin.TeamView{Team: t, Members: []string{}})
}

func (d *directTeams) listTeams(ctx context.Context) ([]byte, error) {
	all, err := d.users.ListTeams(ctx)
	if err != nil {
		return nil, teamErr(err)
	}
	out := make([]admin.TeamView, len(all))
	for i, t := range all {
		out[i] = admin.TeamView{Team: t}
	}
	return json.Marshal(map[string]any{"teams": out})
}

func (d *directTeams) getTeam(ctx context.Context, id string) ([]byte, error) {
	t, err := d.users.GetTeam(ctx, id)
	if err != nil {
		return nil, teamErr(err)
	}
	users, err := d.users.List(ctx)
	if err != nil {
		return nil, teamErr(err)
	}
	v := admin.TeamView{Team: t, Members: []string{}}
	for _, u := range users {
		for _, m := range u.Teams {
			if m == id {
				v.Members = append(v.Members, u.ID)
			}
		}
	}
	return json.Marshal(v)
}

func (d *directTeams) renameTeam(ctx context.Context, id, name string) ([]byte, error) {
	t, err := d.users.RenameTeam(ctx, id, name)
	if err != nil {
		return nil, teamErr(err)
	}
	d.recordTeam(ctx, audit.TeamRenamed, id, "")
	return json.Marshal(admin.TeamView{Team: t})
}

func (d *directTeams) removeTeam(ctx context.Context, id string) error {
	members, err := d.users.DeleteTeam(ctx, id)
	if err != nil {
		return teamErr(err)
	}
	d.recordTeam(ctx, audit.TeamDeleted, id, "")
	if len(members) == 0 {
		return nil
	}
	// Every member's cached credentials at once: one announcement for the whole team.
	var more []invalidation
	for _, m := range members[1:] {
		more = append(more, invalidation{credcache.DefaultChannel, auth.OwnerTag(m)}, invalidation{gateway.TokenChannel, auth.OwnerTag(m)})
	}
	return d.changed(ctx, members[0], admin.UserChange{Access: true}, more...)
}

func (d *directTeams) addMember(ctx context.Context, id, userID string) ([]byte, error) {
	u, err := d.users.AddMember(ctx, id, userID)
	if err != nil {
		return nil, teamErr(err)
	}
	d.recordTeam(ctx, audit.TeamMemberAdded, id, u.ID)
	if err := d.changed(ctx, u.ID, admin.UserChange{Access: true}); err != nil {
		return nil, err
	}
	return json.Marshal(admin.UserView(u))
}

func (d *directTeams) removeMember(ctx context.Context, id, userID string) error {
	u, err := d.users.RemoveMember(ctx, id, userID)
	if err != nil {
		return teamErr(err)
	}
	d.recordTeam(ctx, audit.TeamMemberRemoved, id, u.ID)
	return d.changed(ctx, u.ID, admin.UserChange{Access: true})
}

func (d *directTeams) recordTeam(ctx context.Context, event, team, userID string) {
	_ = d.audit.Record(ctx, audit.Event{Type: event, Team: team, UserID: userID, Actor: "cli", Detail: "team: " + team + " (authgate teams --config)"})
}
