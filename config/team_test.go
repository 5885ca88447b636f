package config

import (
	"strings"
	"testing"
)

func teamYAML(routes string) string {
	return "upstreams:\n  api: {url: \"http://127.0.0.1:9000\"}\nroutes:\n" + routes
}

// TestTeamSource: a route's team source is checked at load, with the file and line of
// the field.
func TestTeamSource(t *testing.T) {
	tests := []struct {
		name, routes string
		want         []string
	}{
		{"path in every pattern", `  - name: sites
    match: ["GET /teams/{team}/sites/{$}", "GET /teams/{team}/sites/{id}/{$}"]
    upstream: api
    team: {path: team}
`, nil},
		{"header", "  - {name: h, match: [\"GET /h/\"], upstream: api, team: {header: X-Team-Id}}\n", nil},
		{"query", "  - {name: q, match: [\"GET /q/\"], upstream: api, team: {query: team}}\n", nil},
		{"path missing from one pattern", `  - name: sites
    match: ["GET /teams/{team}/sites/{$}", "GET /sites/{id}/{$}"]
    upstream: api
    team:
      path: team
`, []string{`bad.yaml:8: routes[0].team.path: {team} is not a wildcard of routes match[1] "GET /sites/{id}/{$}": a path source must name a single-segment wildcard of every pattern of the route`}},
		{"multi-segment wildcard", "  - {name: m, match: [\"GET /t/{team...}\"], upstream: api, team: {path: team}}\n",
			[]string{`bad.yaml:4: routes[0].team.path: {team} is not a wildcard of routes match[0] "GET /t/{team...}": a path source must name a single-segment wildcard of every pattern of the route`}},
		{"two sources", "  - {name: two, match: [\"GET /t/{team}/\"], upstream: api, team: {path: team, header: X-Team}}\n",
			[]string{`bad.yaml:4: routes[0].team: set exactly one of path, header or query`}},
		{"no source", "  - {name: none, match: [\"GET /t/\"], upstream: api, team: {}}\n",
			[]string{`bad.yaml:4: routes[0].team: set exactly one of path, header or query`}},
		{"gateway's own header", "  - {name: own, match: [\"GET /t/\"], upstream: api, team: {header: X-Auth-Team}}\n",
			[]string{`bad.yaml:4: routes[0].team.header: "X-Auth-Team" is a header the gateway owns (credentials, X-Auth-*); name another`}},
		{"public", "  - {name: pub, match: [\"GET /t/{team}/\"], upstream: api, public: true, team: {path: team}}\n",
			[]string{`bad.yaml:4: routes[0].team: a public route cannot check teams: it has no credential to check`}},
		{"bad query", "  - {name: bq, match: [\"GET /t/\"], upstream: api, team: {query: \"a b\"}}\n",
			[]string{`bad.yaml:4: routes[0].team.query: "a b": use letters, digits, '_', '.', '~', '-'`}},
		{"unknown key", "  - {name: uk, match: [\"GET /t/\"], upstream: api, team: {cookie: t}}\n", []string{"cookie"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bad.yaml", []byte(teamYAML(tt.routes)), getenv)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.Routes[0].Team == nil {
					t.Fatal("team source lost")
				}
				return
			}
			got := problemLines(t, err)
			if tt.name == "unknown key" {
				// The unknown key, and (in the same pass) the team source it leaves without one.
				if len(got) != 2 || !strings.Contains(got[0], "cookie") || !strings.HasPrefix(got[0], "bad.yaml:4:") ||
					!strings.Contains(got[1], "set exactly one of path, header or query") {
					t.Errorf("got %q", got)
				}
				return
			}
			if !equal(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
