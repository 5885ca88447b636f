package policy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/policy"
)

var reserved = []string{"/api/auth", "/api/auth/", "/api/refresh_token"}

func TestRouterMatch(t *testing.T) {
	routes := []policy.Route{
		{Name: "reports-id", Patterns: []string{"GET /api/v1/reports/{id}/"}},              // 0
		{Name: "reports-special", Patterns: []string{"GET /api/v1/reports/special/"}},      // 1
		{Name: "things-any", Patterns: []string{"/things/"}},                               // 2
		{Name: "things-post", Patterns: []string{"POST /things/"}},                         // 3
		{Name: "admin-host", Patterns: []string{"admin.example.com/"}},                     // 4
		{Name: "docs-exact", Patterns: []string{"GET /docs/{$}"}},                          // 5
		{Name: "docs-tree", Patterns: []string{"GET /docs/"}},                              // 6
		{Name: "only-get", Patterns: []string{"GET /only-get/{$}", "GET /only-get/b/{$}"}}, // 7
		{Name: "mixed-case-host", Patterns: []string{"GET  Mixed.Example.COM./things/"}},   // 8
		{Name: "host-with-port", Patterns: []string{"ported.example.com:8443/things/"}},    // 9
	}
	rt, err := policy.NewRouter(routes, reserved)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	tests := []struct {
		name         string
		method, host string
		path         string
		want         policy.Match
	}{
		{name: "wildcard segment", method: "GET", path: "/api/v1/reports/7/", want: policy.Match{Route: 0}},
		{name: "literal beats wildcard", method: "GET", path: "/api/v1/reports/special/", want: policy.Match{Route: 1}},
		{name: "literal beats wildcard below it", method: "GET", path: "/api/v1/reports/special/x", want: policy.Match{Route: 1}},
		{name: "GET pattern serves HEAD", method: "HEAD", path: "/api/v1/reports/7/", want: policy.Match{Route: 0}},
		{name: "method-less serves GET", method: "GET", path: "/things/x", want: policy.Match{Route: 2}},
		{name: "method-specific beats method-less", method: "POST", path: "/things/x", want: policy.Match{Route: 3}},
		{name: "method-less serves other methods", method: "DELETE", path: "/things/x", want: policy.Match{Route: 2}},
		{name: "host-specific beats host-less", method: "POST", host: "admin.example.com", path: "/things/x", want: policy.Match{Route: 4}},
		{name: "host-specific catches unknown path", method: "GET", host: "admin.example.com", path: "/nothing", want: policy.Match{Route: 4}},
		{name: "pattern host in any case matches the cleaned host", method: "GET", host: "mixed.example.com", path: "/things/x", want: policy.Match{Route: 8}},
		{name: "pattern host with a port matches the cleaned host", method: "GET", host: "ported.example.com", path: "/things/x", want: policy.Match{Route: 9}},
		{name: "exact {$}", method: "GET", path: "/docs/", want: policy.Match{Route: 5}},
		{name: "subtree below {$}", method: "GET", path: "/docs/a/b", want: policy.Match{Route: 6}},
		{name: "reserved subtree", method: "POST", path: "/api/auth/login/", want: policy.Match{Route: -1, Reserved: "/api/auth/"}},
		{name: "reserved exact", method: "GET", path: "/api/auth", want: policy.Match{Route: -1, Reserved: "/api/auth"}},
		{name: "reserved refresh path", method: "POST", path: "/api/refresh_token", want: policy.Match{Route: -1, Reserved: "/api/refresh_token"}},
		{name: "no pattern", method: "GET", path: "/nothing", want: policy.Match{Route: -1, Status: http.StatusNotFound}},
		{name: "no redirect to subtree", method: "GET", path: "/docs", want: policy.Match{Route: -1, Status: http.StatusNotFound}},
		{name: "wrong method", method: "POST", path: "/only-get/", want: policy.Match{Route: -1, Status: http.StatusMethodNotAllowed, Allow: "GET, HEAD"}},
		{name: "{$} is exact", method: "GET", path: "/only-get/x", want: policy.Match{Route: -1, Status: http.StatusNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.Host = tt.host
			got := rt.Match(r)
			if (got.Pattern == "") != (got.Route < 0 && got.Reserved == "") {
				t.Errorf("Match(%s %s%s): pattern %q for %+v", tt.method, tt.host, tt.path, got.Pattern, got)
			}
			got.Pattern = "" // checked above; the cases name routes, not patterns
			if got != tt.want {
				t.Fatalf("Match(%s %s%s) = %+v, want %+v", tt.method, tt.host, tt.path, got, tt.want)
			}
		})
	}
}

func TestNewRouterErrors(t *testing.T) {
	tests := []struct {
		name     string
		routes   []policy.Route
		reserved []string
		wantIn   []string // substrings the error must hold
	}{
		{
			name: "same pattern twice",
			routes: []policy.Route{
				{Name: "a", Patterns: []string{"GET /x/"}},
				{Name: "b", Patterns: []string{"GET /x/"}},
			},
			wantIn: []string{`route "b"`, `"GET /x/"`},
		},
		{
			name: "wildcards with different names",
			routes: []policy.Route{
				{Name: "a", Patterns: []string{"GET /x/{id}"}},
				{Name: "b", Patterns: []string{"GET /x/{name}"}},
			},
			wantIn: []string{`route "b"`},
		},
		{
			name: "method vs path specificity",
			routes: []policy.Route{
				{Name: "a", Patterns: []string{"GET /a/{x}"}},
				{Name: "b", Patterns: []string{"/a/b"}},
			},
			wantIn: []string{`route "b"`, "conflicts"},
		},
		{
			name: "crossed wildcards",
			routes: []policy.Route{
				{Name: "a", Patterns: []string{"/x/{id}/y"}},
				{Name: "b", Patterns: []string{"/x/y/{id}"}},
			},
			wantIn: []string{`route "b"`},
		},
		{
			name:     "route repeats a reserved pattern",
			routes:   []policy.Route{{Name: "mine", Patterns: []string{"/api/auth/"}}},
			reserved: reserved,
			wantIn:   []string{`route "mine"`},
		},
		{
			name:     "conflicts with a reserved pattern",
			routes:   []policy.Route{{Name: "c", Patterns: []string{"GET /api/{x}/"}}},
			reserved: reserved,
			wantIn:   []string{`route "c"`},
		},
		{
			name:   "bad syntax",
			routes: []policy.Route{{Name: "bad", Patterns: []string{"GET /x/{"}}},
			wantIn: []string{`route "bad"`, `"GET /x/{"`},
		},
		{
			name:   "no path",
			routes: []policy.Route{{Name: "bad", Patterns: []string{"GET"}}},
			wantIn: []string{`route "bad"`},
		},
		{
			name: "same host in two spellings",
			routes: []policy.Route{
				{Name: "a", Patterns: []string{"admin.example.com/x/"}},
				{Name: "b", Patterns: []string{"ADMIN.example.com./x/"}},
			},
			wantIn: []string{`route "b"`},
		},
		{
			name:     "bad reserved pattern",
			reserved: []string{"no-slash"},
			wantIn:   []string{`"no-slash"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := policy.NewRouter(tt.routes, tt.reserved)
			if err == nil {
				t.Fatalf("NewRouter = %v, nil; want an error", rt)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

// TestNewRouterAcceptsOverlapsWithAWinner: patterns that overlap but where one is more
// specific are not conflicts.
func TestNewRouterAcceptsOverlapsWithAWinner(t *testing.T) {
	routes := []policy.Route{
		{Name: "a", Patterns: []string{"/"}},
		{Name: "b", Patterns: []string{"GET /x/{id}/"}},
		{Name: "c", Patterns: []string{"GET /x/special/"}},
		{Name: "d", Patterns: []string{"h.example.com/x/"}},
	}
	if _, err := policy.NewRouter(routes, reserved); err != nil {
		t.Fatalf("NewRouter: %v, want nil", err)
	}
}
