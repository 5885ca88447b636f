package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/policy"
)

// The team dimension of the golden table: every method and path of testdata/teams.yaml,
// path tricks that try to change the team segment included, against credentials that
// differ in scopes and in the teams they act for.
var (
	TeamGoldenMethods = []string{"GET", "POST"}
	TeamGoldenPaths   = []string{
		"/teams/team-a/sites/",
		"/teams/team-b/sites/",
		"/teams/team-a/sites/7/",
		"/teams/team-b/sites/7/",
		"/teams/team-z/sites/",
		"/teams/team-a/../team-b/sites/",
		"/teams/team-a/%2e%2e/team-b/sites/",
		"/teams/team-b/%2E%2E/team-a/sites/",
		"/teams//team-b/sites/",
		"/teams/team-a/sites/../../team-b/sites/",
		"/teams/team-a%2F..%2Fteam-b/sites/",
		"/teams/team-a%2f/sites/",
		"/teams/%74eam-b/sites/",
		"/teams/team%3Aa/sites/",
		"/teams/*/sites/",
		"/teams/./team-b/sites/",
		"/billing/?team=team-a",
		"/billing/?team=team-b",
		"/billing/",
		"/billing/?team=",
		"/billing/?team=team-a&team=team-b",
		"/billing/?team=team-a;team=team-b",
		"/teams/team-b/status",
	}
	// TeamGoldenCredentials are "<scopes>|<team>": scopes comma separated ("-" for none),
	// and the one team the credential acts for, "*" for every team, "-" for none.
	TeamGoldenCredentials = []string{
		"sites:read|team-a", "sites:read|team-b", "sites:read|*", "sites:read|-",
		"sites:*,billing:read|team-a", "billing:read|*", "-|*", "sites:write|team-b",
	}
)

// TeamCredential splits a credential of TeamGoldenCredentials.
func teamCredential(c string) (scopes []string, teams policy.Teams) {
	s, team, _ := strings.Cut(c, "|")
	if s != "-" {
		scopes = strings.Split(s, ",")
	}
	switch team {
	case "*":
		teams.All = true
	case "-":
	default:
		teams.Held = []string{team}
	}
	return scopes, teams
}

func loadTeamsExample(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", "teams.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func teamsExplainer(t *testing.T, cfg *config.Config) *policy.Explainer {
	t.Helper()
	rules := make([]policy.Rule, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rules[i] = policy.Rule{Name: r.Name, Patterns: r.Match, Public: r.Public, Scopes: r.Scopes, ScopesAll: r.ScopesAll}
		if r.Team != nil {
			rules[i].Team = &policy.TeamSource{Path: r.Team.Path, Header: r.Team.Header, Query: r.Team.Query}
		}
	}
	e, err := policy.NewExplainer(rules, cfg.ReservedPatterns(), cfg.Policy.Roles)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExplainTeamsGolden compares every decision of the team dimension with
// testdata/teams.golden. The last column is the path as cleaned, then the team that
// X-Auth-Team would carry ("-" for none). Run `go test ./policy -run Golden -update` only
// after reading the diff.
func TestExplainTeamsGolden(t *testing.T) {
	e := teamsExplainer(t, loadTeamsExample(t))
	var b strings.Builder
	for _, m := range TeamGoldenMethods {
		for _, p := range TeamGoldenPaths {
			for _, c := range TeamGoldenCredentials {
				scopes, teams := teamCredential(c)
				d, err := e.ExplainTeams(m, p, scopes, "", teams)
				if err != nil {
					t.Fatalf("%s %s %s: %v", m, p, c, err)
				}
				verdict := "ALLOW"
				switch {
				case d.Route == "authgate":
					verdict = "GATEWAY"
				case !d.Allowed:
					verdict = fmt.Sprintf("DENY %d %s", d.Status, d.Code)
				}
				fmt.Fprintf(&b, "%-5s %-42s %-28s %-11s %-30s %s %s\n", m, p, c, orDash(d.Route), verdict, orDash(d.Path), orDash(d.Team))
			}
		}
	}
	golden := filepath.Join("testdata", "teams.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	got, wantLines := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
	if len(got) != len(wantLines) {
		t.Fatalf("%d decisions, golden has %d", len(got), len(wantLines))
	}
	for i := range got {
		if got[i] != wantLines[i] {
			t.Errorf("decision changed:\n got  %s\n want %s", got[i], wantLines[i])
		}
	}
}

// TestExplainTeamsNeverCrossed: whatever the path trick, a credential of one team is
// never allowed on a route that checks teams for another team, and the team decided is
// always the one in the path as cleaned.
func TestExplainTeamsNeverCrossed(t *testing.T) {
	e := teamsExplainer(t, loadTeamsExample(t))
	for _, m := range TeamGoldenMethods {
		for _, p := range TeamGoldenPaths {
			for _, team := range []string{"team-a", "team-b"} {
				d, err := e.ExplainTeams(m, p, []string{"*"}, "", policy.Teams{Held: []string{team}})
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed && d.Route != "status" && d.Team != team {
					t.Errorf("%s %s: a credential of %s allowed for team %q", m, p, team, d.Team)
				}
				if d.Allowed && d.Team != "" && !strings.HasPrefix(d.Path, "/teams/"+d.Team+"/") && !strings.HasPrefix(d.Path, "/billing/") {
					t.Errorf("%s %s: team %s is not the cleaned path's %s", m, p, d.Team, d.Path)
				}
			}
		}
	}
}
