package admin

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/user"
)

// TestOpenAPICoversEveryRoute keeps docs/openapi.yaml true: every pattern the API serves
// must be documented there with its method. (Paths under the prefix are documented
// relative to it; the self-refresh path is absolute.)
func TestOpenAPICoversEveryRoute(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	const prefix = "/api/auth"
	users := user.NewMemStore(time.Now)
	a := New(Options{Prefix: prefix, RefreshTokenPath: "/api/refresh_token", Users: users, Teams: users})
	patterns := a.Patterns()
	if len(patterns) < 21 {
		t.Fatalf("Patterns() = %d patterns, want every management call", len(patterns))
	}
	for _, p := range patterns {
		method, path, _ := strings.Cut(p, " ")
		rel := strings.TrimPrefix(path, prefix)
		ops, ok := doc.Paths[rel]
		if !ok {
			t.Errorf("%s: path %q is not in docs/openapi.yaml", p, rel)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("%s: docs/openapi.yaml has %q but not its %s operation", p, rel, method)
		}
	}
}

// TestPatternsAreServed: what Patterns reports is what the mux routes, so the OpenAPI
// check above cannot pass on a stale list.
func TestPatternsAreServed(t *testing.T) {
	users := user.NewMemStore(time.Now)
	a := New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", Users: users, Teams: users})
	for _, p := range a.Patterns() {
		method, path, _ := strings.Cut(p, " ")
		for _, variant := range []string{path, strings.TrimSuffix(path, "/")} {
			if variant == "" {
				continue
			}
			target := strings.ReplaceAll(strings.ReplaceAll(variant, "{id}", "key_x"), "{user}", "usr_x")
			req, _ := newRequest(method, target)
			if _, pattern := a.mux.Handler(req); pattern == "" {
				t.Errorf("%s %s is not routed", method, target)
			}
		}
	}
}

func newRequest(method, target string) (*http.Request, error) {
	return http.NewRequest(method, "http://gw.example"+target, nil)
}

// openAPIDoc reads the parts of docs/openapi.yaml the field checks need.
func openAPIDoc(t *testing.T) (keyProps map[string]any, listParams []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	var list struct {
		Parameters []struct {
			Name string `yaml:"name"`
			In   string `yaml:"in"`
		} `yaml:"parameters"`
	}
	node := doc.Paths["/api-keys/"]["get"]
	if err := node.Decode(&list); err != nil {
		t.Fatalf("docs/openapi.yaml: GET /api-keys/: %v", err)
	}
	for _, p := range list.Parameters {
		if p.In == "query" {
			listParams = append(listParams, p.Name)
		}
	}
	return doc.Components.Schemas["Key"].Properties, listParams
}

// TestOpenAPIKeySchemaCoversKeyView: every field a key view has in JSON is a property of
// the Key schema (the plaintext "key" is KeyWithSecret's), so a field added to the API
// cannot go undocumented.
func TestOpenAPIKeySchemaCoversKeyView(t *testing.T) {
	props, _ := openAPIDoc(t)
	now := time.Now()
	k := apikey.Key{ID: apikey.NewID(), Name: "n", Type: apikey.Personal, Environment: apikey.Live, ExpiresAt: &now,
		LastUsedAt: &now, RevokedAt: &now, HardExpiresAt: &now, Lineage: "key_x", ReplacedBy: "key_y",
		RateLimit: &apikey.RateLimit{Requests: 1, Per: time.Minute}, Team: "team-a"}
	b, err := json.Marshal(View(k, now, apikey.Hygiene{MaxAge: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for f := range fields {
		if _, ok := props[f]; !ok {
			t.Errorf("key views have %q, which docs/openapi.yaml's Key schema does not list", f)
		}
	}
}

// TestOpenAPIListFiltersAreServed: the hygiene filters are documented on GET /api-keys/,
// and each documented one filters (a key without the flag is not listed).
func TestOpenAPIListFiltersAreServed(t *testing.T) {
	_, params := openAPIDoc(t)
	f := newHygieneFixture(t, 0)
	f.create(t, `{"name":"fresh"}`)
	for _, flag := range []string{apikey.FlagStale, apikey.FlagUnused, apikey.FlagExpiring} {
		if !slices.Contains(params, flag) {
			t.Errorf("GET /api-keys/ does not document the %q filter", flag)
			continue
		}
		w := f.do(t, "GET", "/api/auth/api-keys/?"+flag+"=true", "", "root", "*")
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"fresh"`) {
			t.Errorf("?%s=true: %d %s, want 200 without the fresh key", flag, w.Code, w.Body)
		}
	}
}

// TestOpenAPIListSearchIsServed: q (a name substring, any case) and name (one exact
// name) are documented on GET /api-keys/ and filter as documented.
func TestOpenAPIListSearchIsServed(t *testing.T) {
	_, params := openAPIDoc(t)
	f := newHygieneFixture(t, 0)
	reader := f.create(t, `{"name":"billing-reader"}`)
	reader2 := f.create(t, `{"name":"billing-reader-2"}`)
	reports := f.create(t, `{"name":"Reports for Billing"}`)
	f.create(t, `{"name":"ci"}`)
	tests := []struct {
		query string
		want  []string
	}{
		{"q=reader", []string{reader.ID, reader2.ID}},
		{"q=BILLING", []string{reader.ID, reader2.ID, reports.ID}},
		{"q=ing-r", []string{reader.ID, reader2.ID}},
		{"q=" + reports.ID, []string{reports.ID}},
		{"name=billing-reader", []string{reader.ID}},
		{"name=Billing-Reader", nil},
		{"name=billing", nil},
	}
	for _, tt := range tests {
		param, _, _ := strings.Cut(tt.query, "=")
		if !slices.Contains(params, param) {
			t.Errorf("GET /api-keys/ does not document %q", param)
		}
		w := f.do(t, "GET", "/api/auth/api-keys/?"+tt.query, "", "root", "*")
		if w.Code != http.StatusOK {
			t.Fatalf("?%s: %d %s", tt.query, w.Code, w.Body)
		}
		var page struct {
			Keys []KeyView `json:"keys"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("?%s: got %v, want %v", tt.query, got, want)
		}
	}
}

// TestOpenAPIUserAndTeamSchemas: every field of a user view and a team view is a property
// of the User and Team schemas, and the team filter of GET /api-keys/ is documented.
func TestOpenAPIUserAndTeamSchemas(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for schema, v := range map[string]any{
		"User": UserView(user.User{ID: user.NewID(), Email: "a@example.com", Teams: []string{"team-a"}, CreatedAt: now}),
		"Team": TeamView{Team: user.Team{ID: "team-a", Name: "A", CreatedAt: now}, Members: []string{"usr_x"}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		for f := range fields {
			if _, ok := doc.Components.Schemas[schema].Properties[f]; !ok {
				t.Errorf("%s views have %q, which docs/openapi.yaml's %s schema does not list", schema, f, schema)
			}
		}
	}
	if _, params := openAPIDoc(t); !slices.Contains(params, "team") {
		t.Error("GET /api-keys/ does not document the team filter")
	}
}
