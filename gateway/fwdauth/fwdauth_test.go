package fwdauth

import (
	"net/http"
	"strings"
	"testing"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestRead(t *testing.T) {
	nginx := []string{"X-Original-Method", "POST", "X-Original-URI", "/api/v1/reports/generate/?a=1", "X-Forwarded-Host", "api.example.com"}
	traefik := []string{"X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/v1/reports/generate/?a=1", "X-Forwarded-Host", "api.example.com"}
	ok := []struct {
		name string
		mode Mode
		c    Check
	}{
		{"nginx", Nginx, Check{Method: "GET", Target: "/authz", Host: "authgate:8080", Header: header(nginx...)}},
		{"traefik", Traefik, Check{Method: "GET", Target: "/authz", Host: "authgate:8080", Header: header(traefik...)}},
		{"envoy", Envoy, Check{Method: "POST", Target: "/authz/api/v1/reports/generate/?a=1", Host: "api.example.com", Header: header("X-Api-Key", "k")}},
	}
	for _, tc := range ok {
		o, err := Read(tc.mode, tc.c, "/authz")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if o.Method != "POST" || o.URI != "/api/v1/reports/generate/?a=1" || o.URL.Path != "/api/v1/reports/generate/" ||
			o.URL.RawQuery != "a=1" || o.Host != "api.example.com" || o.URL.Host != "" || o.URL.Scheme != "" {
			t.Errorf("%s: %+v %+v", tc.name, o, o.URL)
		}
	}

	bad := []struct {
		name string
		mode Mode
		c    Check
		msg  string
	}{
		// The client's own pair, passed through by nginx: never a fallback, always refused.
		{"nginx with the traefik pair", Nginx, Check{Header: header(append(nginx, "X-Forwarded-Method", "GET")...)}, "X-Forwarded-Method"},
		{"nginx with the traefik uri", Nginx, Check{Header: header(append(nginx, "X-Forwarded-Uri", "/health")...)}, "X-Forwarded-Uri"},
		{"nginx with only the traefik pair", Nginx, Check{Header: header("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/health", "X-Forwarded-Host", "h")}, "X-Forwarded-Method"},
		{"empty other header", Nginx, Check{Header: header(append(nginx, "X-Forwarded-Uri", "")...)}, "X-Forwarded-Uri"},
		{"traefik with the nginx pair", Traefik, Check{Header: header(append(traefik, "X-Original-URI", "/health")...)}, "X-Original-Uri"},
		{"envoy with a header pair", Envoy, Check{Method: "GET", Target: "/authz/x", Host: "h", Header: header("X-Forwarded-Uri", "/health")}, "X-Forwarded-Uri"},
		{"envoy with x-forwarded-host", Envoy, Check{Method: "GET", Target: "/authz/x", Host: "h", Header: header("X-Forwarded-Host", "admin")}, "X-Forwarded-Host"},
		{"repeated method", Nginx, Check{Header: header(append(nginx, "X-Original-Method", "GET")...)}, "more than once"},
		{"repeated uri", Traefik, Check{Header: header(append(traefik, "X-Forwarded-Uri", "/health")...)}, "more than once"},
		{"repeated host", Nginx, Check{Header: header(append(nginx, "X-Forwarded-Host", "admin.example.com")...)}, "more than once"},
		{"no host", Nginx, Check{Header: header(nginx[:4]...)}, "X-Forwarded-Host"},
		{"no uri", Traefik, Check{Header: header("X-Forwarded-Method", "GET", "X-Forwarded-Host", "h")}, "X-Forwarded-Uri"},
		{"host list", Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "/", "X-Forwarded-Host", "a.example, b.example")}, "host"},
		{"absolute URL", Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "http://evil/health", "X-Forwarded-Host", "h")}, "absolute path"},
		{"authority form", Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "evil:80", "X-Forwarded-Host", "h")}, "absolute path"},
		{"fragment", Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "/a#b", "X-Forwarded-Host", "h")}, "byte"},
		{"bad escape", Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "/a%zz", "X-Forwarded-Host", "h")}, "escaped"},
		{"method with space", Nginx, Check{Header: header("X-Original-Method", "GET /x", "X-Original-URI", "/", "X-Forwarded-Host", "h")}, "method"},
		{"envoy without the prefix", Envoy, Check{Method: "GET", Target: "/api/v1/reports/", Host: "h", Header: header()}, "path_prefix"},
		{"envoy bare prefix", Envoy, Check{Method: "GET", Target: "/authz", Host: "h", Header: header()}, "path_prefix"},
		{"envoy prefix lookalike", Envoy, Check{Method: "GET", Target: "/authzz/x", Host: "h", Header: header()}, "path_prefix"},
		{"envoy absolute form", Envoy, Check{Method: "GET", Target: "http://h/authz/x", Host: "h", Header: header()}, "path_prefix"},
		{"unknown mode", Mode("apache"), Check{Header: header(nginx...)}, "not one of"},
	}
	for _, tc := range bad {
		_, err := Read(tc.mode, tc.c, "/authz")
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q, want it to mention %q", tc.name, err, tc.msg)
		}
		for _, vs := range tc.c.Header {
			for _, v := range vs {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Errorf("%s: error %q echoes the value %q", tc.name, err, v)
				}
			}
		}
	}
}

// TestReadDoubleSlash: a URI starting with "//" is a path, not an authority.
func TestReadDoubleSlash(t *testing.T) {
	o, err := Read(Nginx, Check{Header: header("X-Original-Method", "GET", "X-Original-URI", "//evil.example/health", "X-Forwarded-Host", "h")}, "/authz")
	if err != nil {
		t.Fatal(err)
	}
	if o.URL.Host != "" || o.URL.Path != "//evil.example/health" {
		t.Errorf("URL = %+v, want the whole thing as the path", o.URL)
	}
}
