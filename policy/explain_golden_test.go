package policy_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/explain.golden from the current decisions")

// GoldenMethods, GoldenPaths and GoldenCredentials span the example policy of SPEC section
// 4 (the repository's gateway.yaml): every route, paths next to them, and the path tricks
// that try to reach reports-generate (needs reports:generate) under reports-read (needs
// reports:read) or the public health route.
var (
	GoldenMethods = []string{"GET", "POST", "DELETE"}
	GoldenPaths   = []string{
		"/api/v1/reports/",
		"/api/v1/reports/7/",
		"/api/v1/reports/7",
		"/api/v1/reports/7/extra/",
		"/api/v1/reports/generate/",
		"/api/v1/reports/generate",
		"/health",
		"/health/",
		"/HEALTH",
		"/api/v1/reports/generate/../",
		"/api/v1//reports/generate/",
		"/api/v1/reports/./generate/",
		"/api/v1/reports/x/../generate/",
		"/api/v1/reports/%2e%2e/reports/generate/",
		"/api/v1/reports/generate%2F",
		"/api/v1/reports/7/..;/generate/",
		"/health/../api/v1/reports/generate/",
		"/health%2F..%2Fapi/v1/reports/",
		"/api/auth/login/",
	}
	// GoldenCredentials are scope sets ("scopes:a,b") and roles ("role:r").
	GoldenCredentials = []string{
		"scopes:", "scopes:reports:read", "scopes:reports:generate", "scopes:reports:*",
		"scopes:*:read", "scopes:*", "scopes:admin", "scopes:dashboards:read",
		"role:admin", "role:member", "role:viewer",
	}
)

// LoadExample is the repository's gateway.yaml, the example policy of SPEC section 4.
func loadExample(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "gateway.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func explainer(t *testing.T, cfg *config.Config) *policy.Explainer {
	t.Helper()
	rules := make([]policy.Rule, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rules[i] = policy.Rule{Name: r.Name, Patterns: r.Match, Public: r.Public, Scopes: r.Scopes, ScopesAll: r.ScopesAll}
	}
	e, err := policy.NewExplainer(rules, cfg.ReservedPatterns(), cfg.Policy.Roles)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func credential(c string) (scopes []string, role string) {
	if r, ok := strings.CutPrefix(c, "role:"); ok {
		return nil, r
	}
	s := strings.TrimPrefix(c, "scopes:")
	if s == "" {
		return nil, ""
	}
	return strings.Split(s, ","), ""
}

// TestExplainGolden runs every (method, path) of the example policy against every scope
// set and role, and compares the decisions with testdata/explain.golden. A change in
// routing, path cleaning or scope matching that changes who may do what shows up here
// line by line; run `go test ./policy -run Golden -update` only after reading the diff.
func TestExplainGolden(t *testing.T) {
	e := explainer(t, loadExample(t))
	var b strings.Builder
	for _, m := range GoldenMethods {
		for _, p := range GoldenPaths {
			for _, c := range GoldenCredentials {
				scopes, role := credential(c)
				d, err := e.Explain(m, p, scopes, role)
				if err != nil {
					t.Fatalf("%s %s %s: %v", m, p, c, err)
				}
				verdict := "ALLOW"
				switch {
				case d.Route == "authgate":
					verdict = "GATEWAY" // the gateway's own call, not a route
				case !d.Allowed:
					verdict = fmt.Sprintf("DENY %d %s", d.Status, d.Code)
				}
				fmt.Fprintf(&b, "%-6s %-42s %-26s %-6s %-36s %s\n", m, p, c, orDash(d.Route), verdict, d.Path)
			}
		}
	}
	golden := filepath.Join("testdata", "explain.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	got := strings.Split(b.String(), "\n")
	wantLines := strings.Split(string(want), "\n")
	if len(got) != len(wantLines) {
		t.Fatalf("%d decisions, golden has %d", len(got), len(wantLines))
	}
	for i := range got {
		if got[i] != wantLines[i] {
			t.Errorf("decision changed:\n got  %s\n want %s", got[i], wantLines[i])
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TestExplainNoWeakerRoute: whatever trick a path uses, a request the explainer lets
// through for reports:read only never lands on reports-generate, and no trick turns a
// request into one for the public health route.
func TestExplainNoWeakerRoute(t *testing.T) {
	e := explainer(t, loadExample(t))
	for _, m := range GoldenMethods {
		for _, p := range GoldenPaths {
			d, err := e.Explain(m, p, []string{"reports:read"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed && d.Route == "reports-generate" {
				t.Errorf("%s %s: reports:read reaches reports-generate", m, p)
			}
			if d.Route == "health" && d.Path != "/health" {
				t.Errorf("%s %s: reaches health as %s", m, p, d.Path)
			}
			if d.Allowed && m == "POST" {
				t.Errorf("%s %s: reports:read allowed on %s (route %s)", m, p, d.Path, d.Route)
			}
		}
	}
}

func TestExplainUnknownRole(t *testing.T) {
	e := explainer(t, loadExample(t))
	if _, err := e.Explain("GET", "/health", nil, "root"); err == nil || !strings.Contains(err.Error(), `"root"`) {
		t.Errorf("unknown role: err = %v", err)
	}
}

func TestExplainReasons(t *testing.T) {
	e := explainer(t, loadExample(t))
	tests := []struct {
		method, path string
		scopes       []string
		role         string
		want         string
	}{
		{"GET", "/api/v1/reports/7/", []string{"reports:read"}, "", "reports:read grants reports:read"},
		{"GET", "/api/v1/reports/7/", []string{"*:read"}, "", "*:read grants reports:read"},
		{"POST", "/api/v1/reports/generate/", nil, "viewer", "none of reports:read, dashboards:read, goals:read, usage:read, keys:manage grants one of: reports:generate"},
		{"POST", "/api/v1/reports/generate/", nil, "", "the credential has no scopes; it needs one of: reports:generate"},
		{"GET", "/health", nil, "", "public route"},
		{"DELETE", "/health", nil, "", "a route matches this path for GET, HEAD only"},
		{"GET", "/api/v1/reports/%2e%2e/x", nil, "", "no route matches"},
		{"GET", "/api/v1/reports/%2fx/", nil, "", "the path cannot be cleaned unambiguously: " + cleanErr("/api/v1/reports/%2fx/")},
	}
	for _, tt := range tests {
		d, err := e.Explain(tt.method, tt.path, tt.scopes, tt.role)
		if err != nil || d.Reason != tt.want {
			t.Errorf("%s %s %v %q: reason %q (%v), want %q", tt.method, tt.path, tt.scopes, tt.role, d.Reason, err, tt.want)
		}
	}
}

func cleanErr(p string) string {
	_, err := policy.CleanPath(p)
	return err.Error()
}
