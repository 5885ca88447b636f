package login

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/gateway/user"
)

// TestOpenAPICoversEveryCall keeps docs/openapi.yaml true for the issuer's calls: every
// pattern the Handler serves is documented with its method, and is routed by its mux.
func TestOpenAPICoversEveryCall(t *testing.T) {
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
	h, err := New(Options{Prefix: prefix, PasswordParams: user.TestParams})
	if err != nil {
		t.Fatal(err)
	}
	patterns := h.Patterns()
	if len(patterns) != 6 {
		t.Fatalf("Patterns() = %v, want the 6 calls", patterns)
	}
	for _, p := range patterns {
		method, path, _ := strings.Cut(p, " ")
		rel := strings.TrimPrefix(path, prefix)
		if ops, ok := doc.Paths[rel]; !ok {
			t.Errorf("%s: path %q is not in docs/openapi.yaml", p, rel)
		} else if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("%s: docs/openapi.yaml has %q but not its %s operation", p, rel, method)
		}
		for _, variant := range []string{path, strings.TrimSuffix(path, "/")} {
			r, _ := http.NewRequest(method, "http://gw.example"+variant, nil)
			if _, pattern := h.mux.Handler(r); pattern == "" || !h.Serves(r) {
				t.Errorf("%s %s is not routed", method, variant)
			}
		}
	}
}
