package admin

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

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
	a := New(Options{Prefix: prefix, RefreshTokenPath: "/api/refresh_token", Users: user.NewMemStore(time.Now)})
	patterns := a.Patterns()
	if len(patterns) < 14 {
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
	a := New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", Users: user.NewMemStore(time.Now)})
	for _, p := range a.Patterns() {
		method, path, _ := strings.Cut(p, " ")
		for _, variant := range []string{path, strings.TrimSuffix(path, "/")} {
			if variant == "" {
				continue
			}
			target := strings.ReplaceAll(variant, "{id}", "key_x")
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
