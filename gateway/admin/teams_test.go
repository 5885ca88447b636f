package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
)

// teamsFixture is the users fixture with the teams calls on.
func newTeamsFixture(t *testing.T) *usersFixture {
	t.Helper()
	f := newUsersFixture(t)
	f.api.o.Teams = f.users
	f.api.o.Invalidate = func(context.Context, string) error { return nil }
	f.api.o.KeyTag = func(id string) string { return "key:" + id }
	f.api = New(f.api.o)
	return f
}

// callTeams is call with the caller's teams (all: acts for every team).
func (f *usersFixture) callTeams(method, path, body, subject string, teams []string, all bool, scopes ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.Scopes, info.Teams, info.AllTeams = "rid", subject, scopes, teams, all
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r.WithContext(ctx))
	return w
}

func code(w *httptest.ResponseRecorder) string {
	var b struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	return b.Error
}

// TestTeamsAPI: admins create, rename, list, show and delete teams and change their
// members; each membership change is announced (so caches on every replica drop the
// user's credentials); members list and read only their own teams; everyone else is
// refused with the documented status and code.
func TestTeamsAPI(t *testing.T) {
	f := newTeamsFixture(t)
	ctx := context.Background()
	ann := user.User{ID: user.NewID(), Email: "ann@example.com", Role: "viewer"}
	eve := user.User{ID: user.NewID(), Email: "eve@example.com", Role: "viewer", Organization: "other"}
	for _, u := range []user.User{ann, eve} {
		if err := f.users.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	admin := func(method, path, body string) *httptest.ResponseRecorder {
		return f.callTeams(method, path, body, f.root, nil, true, "*")
	}
	want := func(what string, w *httptest.ResponseRecorder, status int, errCode string) {
		t.Helper()
		if w.Code != status || code(w) != errCode {
			t.Errorf("%s: %d %s, want %d %q", what, w.Code, w.Body, status, errCode)
		}
	}
	want("create", admin("POST", "/api/auth/teams/", `{"id":"acme","name":"Acme"}`), 201, "")
	want("create without id", admin("POST", "/api/auth/teams/", `{"name":"Generated"}`), 201, "")
	want("duplicate", admin("POST", "/api/auth/teams/", `{"id":"acme","name":"Again"}`), 409, "conflict")
	want("bad id", admin("POST", "/api/auth/teams/", `{"id":"*","name":"All"}`), 400, "invalid_request")
	want("no name", admin("POST", "/api/auth/teams/", `{"id":"x"}`), 400, "invalid_request")
	want("member creates", f.callTeams("POST", "/api/auth/teams/", `{"name":"n"}`, ann.ID, nil, false, "reports:read"), 403, "insufficient_scope")

	f.changes = nil
	want("add ann", admin("POST", "/api/auth/teams/acme/members/", `{"user_id":"`+ann.ID+`"}`), 200, "")
	want("add eve (other organisation)", admin("POST", "/api/auth/teams/acme/members/", `{"user_id":"`+eve.ID+`"}`), 400, "invalid_request")
	want("add to unknown team", admin("POST", "/api/auth/teams/nope/members/", `{"user_id":"`+ann.ID+`"}`), 404, "not_found")
	want("add unknown user", admin("POST", "/api/auth/teams/acme/members/", `{"user_id":"`+user.NewID()+`"}`), 404, "not_found")
	want("add by a member", f.callTeams("POST", "/api/auth/teams/acme/members/", `{"user_id":"`+eve.ID+`"}`, ann.ID, []string{"acme"}, false, "reports:read"), 403, "insufficient_scope")
	if len(f.changes) != 1 || !f.changes[0].Access {
		t.Errorf("announced changes %+v, want one access change (the one membership that happened)", f.changes)
	}
	if u, _ := f.users.Get(ctx, ann.ID); !slices.Equal(u.Teams, []string{"acme"}) {
		t.Errorf("ann's teams %v", u.Teams)
	}
	// GET /users/me/ shows the caller's teams.
	if w := f.call("GET", "/api/auth/users/me/", "", ann.ID, "reports:read"); !strings.Contains(w.Body.String(), `"teams":["acme"]`) {
		t.Errorf("users/me: %s", w.Body)
	}

	// Lists and reads: admins everything (with members), members their teams only.
	if w := admin("GET", "/api/auth/teams/acme/", ""); !strings.Contains(w.Body.String(), `"members":["`+ann.ID+`"]`) {
		t.Errorf("admin reads acme: %s", w.Body)
	}
	if w := f.callTeams("GET", "/api/auth/teams/", "", ann.ID, []string{"acme"}, false, "reports:read"); !strings.Contains(w.Body.String(), `"acme"`) || strings.Contains(w.Body.String(), "Generated") {
		t.Errorf("ann lists: %s", w.Body)
	}
	if w := f.callTeams("GET", "/api/auth/teams/acme/", "", ann.ID, []string{"acme"}, false, "reports:read"); w.Code != 200 || strings.Contains(w.Body.String(), "members") {
		t.Errorf("ann reads her team: %d %s (no members list for non-admins)", w.Code, w.Body)
	}
	want("eve reads acme", f.callTeams("GET", "/api/auth/teams/acme/", "", eve.ID, nil, false, "reports:read"), 404, "not_found")

	want("rename", admin("PATCH", "/api/auth/teams/acme/", `{"name":"Acme Corp"}`), 200, "")
	want("rename the id", admin("PATCH", "/api/auth/teams/acme/", `{"id":"other"}`), 400, "invalid_request")
	want("rename by a member", f.callTeams("PATCH", "/api/auth/teams/acme/", `{"name":"x"}`, ann.ID, []string{"acme"}, false, "reports:read"), 403, "insufficient_scope")

	f.changes = nil
	want("remove ann", admin("DELETE", "/api/auth/teams/acme/members/"+ann.ID+"/", ""), 204, "")
	if u, _ := f.users.Get(ctx, ann.ID); len(u.Teams) != 0 || len(f.changes) != 1 {
		t.Errorf("after remove: teams %v, changes %+v", u.Teams, f.changes)
	}
	want("add ann again", admin("POST", "/api/auth/teams/acme/members/", `{"user_id":"`+ann.ID+`"}`), 200, "")
	f.changes = nil
	want("delete", admin("DELETE", "/api/auth/teams/acme/", ""), 204, "")
	want("delete again", admin("DELETE", "/api/auth/teams/acme/", ""), 404, "not_found")
	if u, _ := f.users.Get(ctx, ann.ID); len(u.Teams) != 0 || len(f.changes) != 1 || !f.changes[0].Access {
		t.Errorf("after delete: ann's teams %v, changes %+v (want her credentials re-read)", u.Teams, f.changes)
	}
}

// TestKeyTeams: the team a key is made for, and who may move it.
func TestKeyTeams(t *testing.T) {
	f := newTeamsFixture(t)
	admin := func(method, path, body string) *httptest.ResponseRecorder {
		return f.callTeams(method, path, body, f.root, nil, true, "*")
	}
	for _, id := range []string{"a", "b"} {
		if w := admin("POST", "/api/auth/teams/", `{"id":"`+id+`","name":"`+id+`"}`); w.Code != 201 {
			t.Fatal(w.Body)
		}
	}
	member := user.NewID()
	if err := f.users.Create(context.Background(), user.User{ID: member, Email: "m@example.com", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	mk := func(w *httptest.ResponseRecorder) (id, team string) {
		t.Helper()
		var v KeyView
		if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &v) != nil {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		return v.ID, v.Team
	}
	tests := []struct {
		name                string
		body                string
		teams               []string
		all                 bool
		scopes              []string
		status              int
		errCode, wantTeamOf string
	}{
		{"member, own team", `{"name":"k","team":"a"}`, []string{"a"}, false, []string{"keys:manage", "reports:read"}, 201, "", "a"},
		{"member, one team, omitted", `{"name":"k"}`, []string{"b"}, false, []string{"keys:manage"}, 201, "", "b"},
		{"member, no team, omitted", `{"name":"k"}`, nil, false, []string{"keys:manage"}, 201, "", ""},
		{"member, two teams, omitted", `{"name":"k"}`, []string{"a", "b"}, false, []string{"keys:manage"}, 400, "invalid_request", ""},
		{"member, other team", `{"name":"k","team":"b"}`, []string{"a"}, false, []string{"keys:manage"}, 400, "invalid_request", ""},
		{"member, all teams", `{"name":"k","team":"*"}`, []string{"a"}, false, []string{"keys:manage"}, 400, "invalid_request", ""},
		{"admin, admin key, omitted", `{"name":"k","type":"admin"}`, nil, true, []string{"*"}, 201, "", "*"},
		{"admin, admin key, one team", `{"name":"k","type":"admin","team":"a"}`, nil, true, []string{"*"}, 201, "", "a"},
		{"admin, unknown team", `{"name":"k","team":"zz"}`, nil, true, []string{"*"}, 400, "invalid_request", ""},
		{"admin, personal key for all", `{"name":"k","team":"*"}`, nil, true, []string{"*"}, 400, "invalid_request", ""},
		{"admin key of one team makes an admin key", `{"name":"k","type":"admin"}`, []string{"a"}, false, []string{"*"}, 201, "", "a"},
		{"admin key of one team, all teams", `{"name":"k","type":"admin","team":"*"}`, []string{"a"}, false, []string{"*"}, 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		w := f.callTeams("POST", "/api/auth/api-keys/", tt.body, member, tt.teams, tt.all, tt.scopes...)
		if tt.status != 201 {
			if w.Code != tt.status || code(w) != tt.errCode {
				t.Errorf("%s: %d %s, want %d %s", tt.name, w.Code, w.Body, tt.status, tt.errCode)
			}
			continue
		}
		if _, team := mk(w); team != tt.wantTeamOf {
			t.Errorf("%s: team %q, want %q", tt.name, team, tt.wantTeamOf)
		}
	}
	id, _ := mk(f.callTeams("POST", "/api/auth/api-keys/", `{"name":"mine","team":"a"}`, member, []string{"a"}, false, "keys:manage"))
	if w := f.callTeams("PATCH", "/api/auth/api-keys/"+id+"/", `{"team":"b"}`, member, []string{"a", "b"}, false, "keys:manage"); w.Code != 403 || code(w) != "insufficient_scope" {
		t.Errorf("owner moves their key: %d %s, want 403", w.Code, w.Body)
	}
	if w := admin("PATCH", "/api/auth/api-keys/"+id+"/", `{"team":"b"}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"team":"b"`) {
		t.Errorf("admin moves the key: %d %s", w.Code, w.Body)
	}
	if w := admin("GET", "/api/auth/api-keys/?team=b", ""); !strings.Contains(w.Body.String(), id) {
		t.Errorf("list ?team=b: %s", w.Body)
	}
	if w := admin("GET", "/api/auth/api-keys/?team=a", ""); strings.Contains(w.Body.String(), id) {
		t.Errorf("list ?team=a lists the moved key: %s", w.Body)
	}
	if w := admin("GET", "/api/auth/api-keys/?team=none", ""); w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"team":"a"`) {
		t.Errorf("list ?team=none: %s", w.Body)
	}
}
