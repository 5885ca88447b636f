package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

const teamsAPI = "/api/auth/teams/"

// teamRoutes are appended to liveConfig's routes: one route per team source.
const teamRoutes = `  - name: team-sites
    match: ["GET /teams/{team}/sites/{$}", "GET /teams/{team}/sites/{id}/{$}"]
    upstream: api
    scopes: ["reports:read"]
    team: {path: team}
  - name: team-projects
    match: ["GET /api/v1/projects/{$}"]
    upstream: api
    scopes: ["reports:read"]
    team: {header: X-Team-Id}
  - name: team-boards
    match: ["GET /api/v1/boards/{$}"]
    upstream: api
    scopes: ["reports:read"]
    team: {query: team}
`

// teamReplicas serves two gateways with the issuer and the team routes on one Redis.
func teamReplicas(t *testing.T) (a, b *liveGW, rs *redistest.Server) {
	t.Helper()
	rs = redistest.Start(t)
	o := issuerOpts(t.TempDir(), nil)
	o.extra = teamRoutes + o.extra
	o.adminKey = newAdminKey(t)
	a, b = serveLive(t, rs, o), serveLive(t, rs, o)
	waitForUser(t, rs, adminEmail)
	return a, b, rs
}

func (g *liveGW) createTeam(id, name string) {
	g.tb.Helper()
	wantStatus(g.tb, "create team "+id, g.call("POST", teamsAPI, g.adminKey, map[string]string{"id": id, "name": name}), http.StatusCreated)
}

func (g *liveGW) addMember(team, userID string) {
	g.tb.Helper()
	wantStatus(g.tb, "add member", g.call("POST", teamsAPI+team+"/members/", g.adminKey, map[string]string{"user_id": userID}), http.StatusOK)
}

// teamCase is one request of the matrix and its documented answer.
type teamCase struct {
	name    string
	target  string   // request target, sent byte for byte
	cred    string   // X-API-Key, or "Bearer <token>"
	headers []string // extra headers
	status  int
	code    string // error code when refused
	team    string // X-Auth-Team upstream when allowed
	path    string // the path forwarded when allowed
}

// run sends c to g over raw TCP and checks the answer, the upstream hit and its headers.
func (c teamCase) run(t *testing.T, g *liveGW) {
	t.Helper()
	api := g.ups["api"]
	before := api.count()
	hdrs := append([]string{}, c.headers...)
	if tok, ok := strings.CutPrefix(c.cred, "Bearer "); ok {
		hdrs = append(hdrs, bearer(tok))
	} else {
		hdrs = append(hdrs, "X-API-Key: "+c.cred)
	}
	a := rawRequest(t, strings.TrimPrefix(g.base, "http://"), requestText("GET", c.target, "gw.test", hdrs...))
	forwarded := api.count() - before
	if c.status != http.StatusOK {
		if forwarded != 0 {
			t.Errorf("%s: refused request reached the upstream", c.name)
		}
		t.Run(c.name, func(t *testing.T) { assertRejected(t, a, c.status, c.code) })
		return
	}
	if a.status != http.StatusOK || forwarded != 1 {
		t.Errorf("%s: status %d, forwarded %d; want 200 forwarded once (%s)", c.name, a.status, forwarded, a.body)
		return
	}
	got := api.requests()[before]
	vals := got.Header.Values("X-Auth-Team")
	switch {
	case c.team == "" && len(vals) != 0:
		t.Errorf("%s: upstream X-Auth-Team %q, want none", c.name, vals)
	case c.team != "" && (len(vals) != 1 || vals[0] != c.team):
		t.Errorf("%s: upstream X-Auth-Team %q, want %q", c.name, vals, c.team)
	}
	if got.RequestURI != c.path {
		t.Errorf("%s: forwarded as %s, want %s", c.name, got.RequestURI, c.path)
	}
}

// TestTeams_EndToEndTwoReplicas: users in teams A and B on two replicas of one Redis,
// keys and tokens bound to each, routes naming the team in the path, a header and a query
// parameter. Every combination gets its documented answer, only allowed requests reach the
// upstream, with X-Auth-Team; path tricks cannot change the team; a client's own
// X-Auth-Team never arrives. Removing a user from team A stops their A key and token on
// both replicas within a second.
func TestTeams_EndToEndTwoReplicas(t *testing.T) {
	a, b, rs := teamReplicas(t)
	a.createTeam("team-a", "Team A")
	a.createTeam("team-b", "Team B")
	const pw = "a long enough password"
	alice := a.createUser("alice@example.com", pw, "member")
	bob := a.createUser("bob@example.com", pw, "member")
	carol := a.createUser("carol@example.com", pw, "member")
	a.addMember("team-a", alice.ID)
	a.addMember("team-b", bob.ID)
	a.addMember("team-a", carol.ID)
	a.addMember("team-b", carol.ID)

	aliceTok := a.loginAs("alice@example.com", pw, "").Access
	bobTok := b.loginAs("bob@example.com", pw, "").Access
	carolTok := a.loginAs("carol@example.com", pw, "").Access
	// Team omitted: a member of one team gets a key for it.
	aliceKey := a.createKeyBearer(aliceTok, map[string]any{"name": "alice"})
	if aliceKey.Team != "team-a" {
		t.Fatalf("alice's key: team %q, want team-a", aliceKey.Team)
	}
	narrow := a.createKeyBearer(aliceTok, map[string]any{"name": "narrow", "scopes": []string{"keys:manage"}})
	bobKey := b.createKeyBearer(bobTok, map[string]any{"name": "bob", "team": "team-b"})
	// Refusals at creation: a team one is not in, several teams and none chosen, all teams
	// for a personal key.
	for _, tc := range []struct {
		tok  string
		body map[string]any
	}{
		{aliceTok, map[string]any{"name": "x", "team": "team-b"}},
		{carolTok, map[string]any{"name": "x"}},
		{aliceTok, map[string]any{"name": "x", "team": "*"}},
		{aliceTok, map[string]any{"name": "x", "team": "no/such"}},
	} {
		assertRejected(t, a.call("POST", keysAPI, "", tc.body, bearer(tc.tok)), http.StatusBadRequest, "invalid_request")
	}
	allKey := a.createKey(a.adminKey, map[string]any{"name": "all", "type": "admin", "scopes": []string{"reports:read"}})
	if allKey.Team != apikey.AllTeams {
		t.Fatalf("admin key without team: %q, want *", allKey.Team)
	}
	aOnly := a.createKey(a.adminKey, map[string]any{"name": "a-only", "type": "admin", "team": "team-a", "scopes": []string{"reports:read"}})

	// Keys made before teams existed: a personal key acts for no team, an admin key for all.
	ks := keyStore(t, rs)
	legacy := func(typ, by string) string {
		plain, err := apikey.Generate("sk", apikey.Live)
		if err != nil {
			t.Fatal(err)
		}
		k := apikey.Key{ID: apikey.NewID(), Name: "legacy " + typ, Type: typ, Environment: apikey.Live, CreatedBy: by,
			Start: plain[:apikey.StartLen], Scopes: []string{"reports:read"}}
		if err := ks.Create(context.Background(), k, apikey.NewHasher("").Hash(plain)); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	legacyPersonal, legacyAdmin := legacy(apikey.Personal, alice.ID), legacy(apikey.Admin, "bootstrap")

	matrix := []teamCase{
		{name: "own team", target: "/teams/team-a/sites/", cred: aliceKey.Secret, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "own team, second pattern", target: "/teams/team-b/sites/7/", cred: bobKey.Secret, status: 200, team: "team-b", path: "/teams/team-b/sites/7/"},
		{name: "other team", target: "/teams/team-b/sites/", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "other team (bob)", target: "/teams/team-a/sites/7/", cred: bobKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "all-teams admin key", target: "/teams/team-b/sites/", cred: allKey.Secret, status: 200, team: "team-b", path: "/teams/team-b/sites/"},
		{name: "all-teams admin key, a team that does not exist", target: "/teams/team-z/sites/", cred: allKey.Secret, status: 200, team: "team-z", path: "/teams/team-z/sites/"},
		{name: "admin key of team A on B", target: "/teams/team-b/sites/", cred: aOnly.Secret, status: 403, code: "team_not_allowed"},
		{name: "admin key of team A on A", target: "/teams/team-a/sites/", cred: aOnly.Secret, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "legacy personal key", target: "/teams/team-a/sites/", cred: legacyPersonal, status: 403, code: "team_not_allowed"},
		{name: "legacy admin key", target: "/teams/team-b/sites/", cred: legacyAdmin, status: 200, team: "team-b", path: "/teams/team-b/sites/"},
		{name: "token of team A", target: "/teams/team-a/sites/", cred: "Bearer " + aliceTok, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "token of team A on B", target: "/teams/team-b/sites/", cred: "Bearer " + aliceTok, status: 403, code: "team_not_allowed"},
		{name: "multi-team token on A", target: "/teams/team-a/sites/", cred: "Bearer " + carolTok, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "multi-team token on B", target: "/teams/team-b/sites/", cred: "Bearer " + carolTok, status: 200, team: "team-b", path: "/teams/team-b/sites/"},
		// Scopes are checked before teams: a credential that may not use the route learns
		// nothing about teams.
		{name: "other team without scope", target: "/teams/team-b/sites/", cred: narrow.Secret, status: 403, code: "insufficient_scope"},
		// Path tricks: the team is the segment of the path as cleaned, matched and forwarded.
		{name: "dot-dot to another team", target: "/teams/team-a/../team-b/sites/", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "encoded dot-dot to another team", target: "/teams/team-a/%2e%2e/team-b/sites/", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "encoded dot-dot back to own team", target: "/teams/team-b/%2E%2E/team-a/sites/", cred: aliceKey.Secret, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "double slash", target: "/teams//team-b/sites/", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "double slash, own team", target: "//teams//team-a//sites/", cred: aliceKey.Secret, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "encoded slash in the team segment", target: "/teams/team-a%2F..%2Fteam-b/sites/", cred: aliceKey.Secret, status: 400, code: "malformed_request"},
		{name: "encoded slash, lower case", target: "/teams/team-a%2f/sites/", cred: aliceKey.Secret, status: 400, code: "malformed_request"},
		{name: "percent-encoded letters", target: "/teams/%74eam-b/sites/", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "percent-encoded letters, own team", target: "/teams/%74eam-a/sites/", cred: aliceKey.Secret, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		{name: "not a team ID", target: "/teams/team%20a/sites/", cred: allKey.Secret, status: 400, code: "malformed_request"},
		// A client's own X-Auth-Team never reaches the upstream.
		{name: "forged X-Auth-Team", target: "/teams/team-a/sites/", cred: aliceKey.Secret, headers: []string{"X-Auth-Team: team-b", "X_Auth_Team: team-b"}, status: 200, team: "team-a", path: "/teams/team-a/sites/"},
		// Header source.
		{name: "header: own team", target: "/api/v1/projects/", cred: aliceKey.Secret, headers: []string{"X-Team-Id: team-a"}, status: 200, team: "team-a", path: "/api/v1/projects/"},
		{name: "header: other team", target: "/api/v1/projects/", cred: aliceKey.Secret, headers: []string{"X-Team-Id: team-b"}, status: 403, code: "team_not_allowed"},
		{name: "header: no team named", target: "/api/v1/projects/", cred: aliceKey.Secret, status: 400, code: "malformed_request"},
		{name: "header: no team named, admin", target: "/api/v1/projects/", cred: allKey.Secret, status: 400, code: "malformed_request"},
		{name: "header: two teams", target: "/api/v1/projects/", cred: aliceKey.Secret, headers: []string{"X-Team-Id: team-a", "X-Team-Id: team-b"}, status: 400, code: "malformed_request"},
		{name: "header: CGI spelling beside it", target: "/api/v1/projects/", cred: aliceKey.Secret, headers: []string{"X-Team-Id: team-a", "X_Team_Id: team-b"}, status: 400, code: "malformed_request"},
		// Query source.
		{name: "query: own team", target: "/api/v1/boards/?team=team-a", cred: aliceKey.Secret, status: 200, team: "team-a", path: "/api/v1/boards/?team=team-a"},
		{name: "query: other team", target: "/api/v1/boards/?team=team-b", cred: aliceKey.Secret, status: 403, code: "team_not_allowed"},
		{name: "query: no team named", target: "/api/v1/boards/", cred: aliceKey.Secret, status: 400, code: "malformed_request"},
		{name: "query: two teams", target: "/api/v1/boards/?team=team-a&team=team-b", cred: aliceKey.Secret, status: 400, code: "malformed_request"},
		// Routes without a team source: keys of every team and of none work; a one-team
		// credential still tells the upstream its team.
		{name: "no team route, legacy key", target: "/api/v1/reports/", cred: legacyPersonal, status: 200, team: "", path: "/api/v1/reports/"},
		{name: "no team route, team key", target: "/api/v1/reports/", cred: bobKey.Secret, status: 200, team: "team-b", path: "/api/v1/reports/"},
	}
	for _, g := range []*liveGW{a, b} {
		for _, c := range matrix {
			c.run(t, g)
		}
	}
	for _, g := range []*liveGW{a, b} {
		if v := metricValue(t, g.reg, "authgate_rejected_requests_total", map[string]string{"reason": "team_not_allowed", "route": "team-sites", "auth": "api_key"}); v < 1 {
			t.Errorf("team_not_allowed not counted in the rejection metrics: %v", v)
		}
	}

	// Alice leaves team A (through replica A). Her key and token, cached on both replicas,
	// stop acting for team A on both within a second.
	wantStatus(t, "remove member", a.call("DELETE", teamsAPI+"team-a/members/"+alice.ID+"/", a.adminKey, nil), http.StatusNoContent)
	for _, g := range []*liveGW{a, b} {
		for _, cred := range []string{"X-API-Key: " + aliceKey.Secret, bearer(aliceTok)} {
			start := time.Now()
			for {
				before := g.ups["api"].count()
				ans := rawRequest(t, strings.TrimPrefix(g.base, "http://"), requestText("GET", "/teams/team-a/sites/", "gw.test", cred))
				if ans.status != http.StatusOK {
					assertRejected(t, ans, http.StatusForbidden, "team_not_allowed")
					if g.ups["api"].count() != before {
						t.Error("the refused request reached the upstream")
					}
					break
				}
				if time.Since(start) > revocationBound {
					t.Fatalf("alice's credential still acts for team A %s after she left it", revocationBound)
				}
			}
		}
	}
	u, err := user.NewStore(rs.Client(t), redisPrefix, time.Now).Get(context.Background(), alice.ID)
	if err != nil || len(u.Teams) != 0 {
		t.Errorf("alice's teams after leaving: %v %v", u.Teams, err)
	}
}
