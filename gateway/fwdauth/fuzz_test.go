package fwdauth

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzForwardAuthHeaders: whatever a client and proxy put in the check request, Read
// never panics, never accepts a request carrying the pair its mode does not read (or the
// other pair's host for envoy) or a repeated value, and never yields a URI that is not an
// absolute path, a URL with a scheme or host, or an empty method.
func FuzzForwardAuthHeaders(f *testing.F) {
	f.Add(uint8(0), "GET", "/authz", "gw", "GET", "/health", "h.example", "", "", uint8(0))
	f.Add(uint8(1), "GET", "/authz", "gw", "POST", "/api/v1/reports/generate/", "h", "GET", "/health", uint8(3))
	f.Add(uint8(2), "DELETE", "/authz/api/v1/x?y=1", "h:8443", "", "", "", "", "", uint8(0))
	f.Add(uint8(0), "GET", "/authz", "gw", "GET", "//evil/health", "a,b", "GET", "/x", uint8(7))
	f.Add(uint8(2), "GET", "/authz//evil/x", "[::1]:80", "", "", "", "", "/health", uint8(2))
	f.Fuzz(func(t *testing.T, mode uint8, cm, target, chost, method, uri, host, otherMethod, otherURI string, dup uint8) {
		m := []Mode{Nginx, Traefik, Envoy, "x"}[mode%4]
		mh, uh, oh, ouh := "X-Original-Method", "X-Original-Uri", "X-Forwarded-Method", "X-Forwarded-Uri"
		if m == Traefik {
			mh, uh, oh, ouh = oh, ouh, mh, uh
		}
		h := http.Header{}
		set := func(name, v string, twice bool) {
			if v != "" {
				h.Add(name, v)
				if twice {
					h.Add(name, v)
				}
			}
		}
		set(mh, method, dup&1 != 0)
		set(uh, uri, dup&2 != 0)
		set("X-Forwarded-Host", host, dup&4 != 0)
		set(oh, otherMethod, false)
		set(ouh, otherURI, false)
		o, err := Read(m, Check{Method: cm, Target: target, Host: chost, Header: h}, "/authz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if m == "x" {
			t.Fatalf("unknown mode accepted")
		}
		if otherMethod != "" || otherURI != "" {
			t.Fatalf("accepted a request carrying the other pair: %v", h)
		}
		for k, vs := range h {
			if len(vs) > 1 {
				t.Fatalf("accepted a repeated %s", k)
			}
		}
		if m == Envoy && len(h) > 0 {
			t.Fatalf("envoy accepted forwarding headers %v", h)
		}
		if !strings.HasPrefix(o.URI, "/") || o.URL == nil || o.URL.Scheme != "" || o.URL.Host != "" || o.URL.Opaque != "" ||
			!strings.HasPrefix(o.URL.Path, "/") || o.Method == "" || o.Host == "" || strings.ContainsAny(o.Host, ", /") {
			t.Fatalf("accepted %+v URL %+v", o, o.URL)
		}
		if m != Envoy && (o.Method != method || o.URI != uri || o.Host != host) {
			t.Fatalf("read %+v, sent %q %q %q", o, method, uri, host)
		}
		if m == Envoy && (o.Method != cm || "/authz"+o.URI != target || o.Host != chost) {
			t.Fatalf("envoy read %+v from %q %q %q", o, cm, target, chost)
		}
	})
}
