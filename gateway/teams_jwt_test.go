package gateway_test

import (
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestExternalTokenTeams: an external issuer's tokens act for the teams in its
// team_claim; a token of several teams reaches each, with X-Auth-Team the team named; a
// "*" in the claim grants nothing; an admin-scoped token acts for every team; an issuer
// without team_claim gives its tokens no team.
func TestExternalTokenTeams(t *testing.T) {
	h := newGateway(t, `jwt:
  issuers:
    - issuer: "https://idp.example.com/"
      audiences: ["api"]
      hmac_secret: "`+hmacSecret+`"
      algorithms: ["HS256"]
      team_claim: groups
    - issuer: "https://other.example.com/"
      audiences: ["api"]
      hmac_secret: "`+hmacSecret+`"
      algorithms: ["HS256"]
routes:
  - name: sites
    match: ["GET /teams/{team}/sites/{$}"]
    upstream: api
    scopes: ["sites:read"]
    team: {path: team}
`, "api")
	api := h.ups["api"]
	now := time.Now()
	tok := func(iss string, extra map[string]any) string {
		c := map[string]any{"iss": iss, "sub": "u-1", "aud": "api", "exp": now.Add(time.Hour).Unix(), "scope": "sites:read"}
		for k, v := range extra {
			c[k] = v
		}
		return mint(t, jose.HS256, []byte(hmacSecret), "", c)
	}
	two := tok("https://idp.example.com/", map[string]any{"groups": []any{"acme", "globex"}})
	star := tok("https://idp.example.com/", map[string]any{"groups": "*"})
	admin := tok("https://idp.example.com/", map[string]any{"scope": "sites:read admin"})
	other := tok("https://other.example.com/", map[string]any{"groups": []any{"acme"}})
	for _, c := range []struct {
		tok, path string
		status    int
		code      string
	}{
		{two, "/teams/acme/sites/", 200, ""},
		{two, "/teams/globex/sites/", 200, ""},
		{two, "/teams/initech/sites/", 403, "team_not_allowed"},
		{star, "/teams/acme/sites/", 403, "team_not_allowed"},
		{admin, "/teams/initech/sites/", 200, ""},
		{other, "/teams/acme/sites/", 403, "team_not_allowed"},
	} {
		before := api.count()
		a := h.do("GET", c.path, "192.0.2.1:1234", "Authorization: Bearer "+c.tok)
		if c.status != http.StatusOK {
			assertRejected(t, a, c.status, c.code)
			if api.count() != before {
				t.Errorf("%s: refused request reached the upstream", c.path)
			}
			continue
		}
		if a.status != http.StatusOK || api.count() != before+1 {
			t.Fatalf("%s: %d %s", c.path, a.status, a.body)
		}
		want := c.path[len("/teams/") : len(c.path)-len("/sites/")]
		if got := api.requests()[before].Header.Get("X-Auth-Team"); got != want {
			t.Errorf("%s: X-Auth-Team %q, want %q", c.path, got, want)
		}
	}
}
