package config

import (
	"slices"
	"strings"
	"testing"
)

// TestForwardAuthHeaders: forward_auth.headers defaults to nginx, names one of the three
// proxies or is refused with the choices, and envoy reserves the path's subtree.
func TestForwardAuthHeaders(t *testing.T) {
	cfg, err := Parse("fa.yaml", []byte("forward_auth: {enabled: true}\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ForwardAuth.Headers != "nginx" {
		t.Errorf("default forward_auth.headers = %q, want nginx", cfg.ForwardAuth.Headers)
	}
	if r := cfg.ReservedPatterns(); !slices.Contains(r, "/authz") || slices.Contains(r, "/authz/") {
		t.Errorf("nginx reserved patterns %v, want /authz only", r)
	}

	bad := []struct{ yaml, want string }{
		{"forward_auth: {enabled: true, headers: apache}\n",
			`fa.yaml:1: forward_auth.headers: must be one of nginx, traefik, envoy, got "apache"`},
		{"forward_auth: {enabled: true, headers: \"\"}\n",
			`fa.yaml:1: forward_auth.headers: must be one of nginx, traefik, envoy, got ""`},
		{"forward_auth: {enabled: true, headers: envoy, path: /authz/}\n",
			`forward_auth.path: with headers: envoy the original path is appended to it, so it must not end with '/', got "/authz/"`},
		{"upstreams: {api: {url: \"http://127.0.0.1:9\"}}\nforward_auth: {enabled: true, headers: envoy}\nroutes:\n  - {name: r, match: [\"GET /authz/x\"], upstream: api, public: true}\n",
			`overlaps the gateway's own path "/authz/"`},
	}
	for _, tt := range bad {
		_, err := Parse("fa.yaml", []byte(tt.yaml), getenv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}

	cfg, err = Parse("fa.yaml", []byte("forward_auth: {enabled: true, headers: envoy}\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.ReservedPatterns(); !slices.Contains(r, "/authz") || !slices.Contains(r, "/authz/") {
		t.Errorf("envoy reserved patterns %v, want /authz and /authz/", r)
	}
}
