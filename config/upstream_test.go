package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpstreamTargets: url and targets are exclusive, targets share scheme and path, the
// balancing and health settings are checked, and each problem names its line.
func TestUpstreamTargets(t *testing.T) {
	tests := []struct {
		name, upstreams string
		want            []string
	}{
		{"one url", "  api: {url: \"http://10.0.0.1:9000\"}\n", nil},
		{"targets", "  api:\n    targets: [\"http://10.0.0.1:9000/v1\", \"http://10.0.0.2:9000/v1/\"]\n    balance: least_requests\n    health: {max_failures: 3, eject_for: 1m}\n    max_connections: 100\n", nil},
		{"both", "  api:\n    url: \"http://10.0.0.1:9000\"\n    targets: [\"http://10.0.0.2:9000\"]\n",
			[]string{`bad.yaml:4: upstreams.api.targets: set url (one target) or targets (several), not both`}},
		{"neither", "  api:\n    timeout: 5s\n",
			[]string{`bad.yaml:2: upstreams.api.url: required (or targets: a list of URLs)`}},
		{"other path", "  api:\n    targets:\n      - \"http://10.0.0.1:9000/v1\"\n      - \"http://10.0.0.2:9000/v2\"\n",
			[]string{`bad.yaml:5: upstreams.api.targets[1]: every target needs the same scheme and path as targets[0] (http://…/v1); only host:port differs`}},
		{"other scheme", "  api:\n    targets:\n      - \"http://10.0.0.1:9000\"\n      - \"https://10.0.0.2:9000\"\n",
			[]string{`bad.yaml:5: upstreams.api.targets[1]: every target needs the same scheme and path as targets[0] (http://…); only host:port differs`}},
		{"twice", "  api:\n    targets:\n      - \"http://10.0.0.1:9000\"\n      - \"http://10.0.0.1:9000\"\n",
			[]string{`bad.yaml:5: upstreams.api.targets[1]: 10.0.0.1:9000 is also targets[0]`}},
		{"not a url", "  api:\n    targets: [\"10.0.0.1:9000\"]\n",
			[]string{`bad.yaml:3: upstreams.api.targets[0]: want an http:// or https:// URL with a host, got "10.0.0.1:9000"`}},
		{"balance", "  api:\n    url: \"http://10.0.0.1:9000\"\n    balance: random\n",
			[]string{`bad.yaml:4: upstreams.api.balance: must be one of round_robin, least_requests, got "random"`}},
		{"health", "  api:\n    url: \"http://10.0.0.1:9000\"\n    health:\n      max_failures: 0\n      eject_for: 0s\n",
			[]string{`bad.yaml:5: upstreams.api.health.max_failures: must be >= 1, got 0 (leave it out for the default 1)`,
				`bad.yaml:6: upstreams.api.health.eject_for: must be > 0, got 0s (leave it out for the default 10s)`}},
		{"max_connections", "  api:\n    url: \"http://10.0.0.1:9000\"\n    max_connections: -1\n",
			[]string{`bad.yaml:4: upstreams.api.max_connections: must not be negative, got -1 (0: no bound)`}},
		{"tls on http", "  api:\n    url: \"http://10.0.0.1:9000\"\n    tls: {server_name: api.internal}\n",
			[]string{`bad.yaml:4: upstreams.api.tls: applies to https:// targets, and this upstream has none`}},
		{"tls cert without key", "  api:\n    url: \"https://10.0.0.1:9000\"\n    tls: {cert_file: /x/cert.pem}\n",
			[]string{`bad.yaml:4: upstreams.api.tls: cert_file and key_file go together: set both or neither`}},
		{"tls missing ca", "  api:\n    url: \"https://10.0.0.1:9000\"\n    tls: {ca_file: /nonexistent/ca.pem}\n",
			[]string{`bad.yaml:4: upstreams.api.tls: ca_file: open /nonexistent/ca.pem: no such file or directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "upstreams:\n" + tt.upstreams
			_, err := Parse("bad.yaml", []byte(yaml), getenv)
			if tt.want == nil {
				if err != nil {
					t.Errorf("unexpected problems: %v", err)
				}
				return
			}
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s\n%s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "), yaml)
			}
		})
	}
}

// TestUpstreamDefaults: balance round_robin, one failure ejects for 10s, no connection
// bound, and url stays the one target.
func TestUpstreamDefaults(t *testing.T) {
	cfg, err := Parse("ok.yaml", []byte("upstreams:\n  api: {url: \"http://10.0.0.1:9000\"}\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams["api"]
	if u.Balance != "round_robin" || u.Health.MaxFailures != 1 || u.Health.EjectFor != 10*time.Second || u.MaxConnections != 0 {
		t.Errorf("defaults = balance %q, health %+v, max_connections %d", u.Balance, u.Health, u.MaxConnections)
	}
	if got := u.TargetURLs(); len(got) != 1 || got[0] != "http://10.0.0.1:9000" {
		t.Errorf("TargetURLs = %v", got)
	}
}

// TestUpstreamTLSFiles: a CA file without a certificate and a key that does not load are
// refused at load, not at the first request.
func TestUpstreamTLSFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tls, want string }{
		{"{ca_file: " + junk + "}", "bad.yaml:4: upstreams.api.tls: ca_file " + junk + ": no PEM certificate in it"},
		{"{cert_file: " + junk + ", key_file: " + junk + "}", "bad.yaml:4: upstreams.api.tls: cert_file/key_file: tls: failed to find any PEM data in certificate input"},
	} {
		_, err := Parse("bad.yaml", []byte("upstreams:\n  api:\n    url: \"https://10.0.0.1:9000\"\n    tls: "+tc.tls+"\n"), getenv)
		if got := problemLines(t, err); len(got) != 1 || got[0] != tc.want {
			t.Errorf("tls %s: got %q, want %q", tc.tls, got, tc.want)
		}
	}
}

// TestRouteStripPrefixValidation: strip_prefix is a plain path that every pattern of the
// route starts with at a segment boundary.
func TestRouteStripPrefixValidation(t *testing.T) {
	tests := []struct {
		name, route string
		want        []string
	}{
		{"rest wildcard", `{name: b, match: ["GET /billing/{rest...}", "POST /billing/{$}", "/billing"], upstream: api, strip_prefix: /billing}`, nil},
		{"with host", `{name: b, match: ["GET api.example.com/billing/{id}"], upstream: api, strip_prefix: /billing}`, nil},
		{"deep", `{name: b, match: ["/v1/billing/{rest...}"], upstream: api, strip_prefix: /v1/billing}`, nil},
		{"not a segment boundary", `{name: b, match: ["GET /billingx/{rest...}"], upstream: api, strip_prefix: /billing}`,
			[]string{`bad.yaml:4: routes[0].match[0]: does not start with strip_prefix "/billing": every pattern of the route must (e.g. "/billing/{rest...}")`}},
		{"one pattern elsewhere", `{name: b, match: ["GET /billing/{rest...}", "GET /other/"], upstream: api, strip_prefix: /billing}`,
			[]string{`bad.yaml:4: routes[0].match[1]: does not start with strip_prefix "/billing": every pattern of the route must (e.g. "/billing/{rest...}")`}},
		{"trailing slash", `{name: b, match: ["GET /billing/{rest...}"], upstream: api, strip_prefix: /billing/}`,
			[]string{`bad.yaml:4: routes[0].strip_prefix: must be a plain path such as "/billing": starting with '/', not ending with '/', no wildcard, escape or dot segment; got "/billing/"`}},
		{"root", `{name: b, match: ["GET /billing/{rest...}"], upstream: api, strip_prefix: /}`,
			[]string{`bad.yaml:4: routes[0].strip_prefix: must be a plain path such as "/billing": starting with '/', not ending with '/', no wildcard, escape or dot segment; got "/"`}},
		{"dots", `{name: b, match: ["GET /a/{rest...}"], upstream: api, strip_prefix: /a/..}`,
			[]string{`bad.yaml:4: routes[0].strip_prefix: must be a plain path such as "/billing": starting with '/', not ending with '/', no wildcard, escape or dot segment; got "/a/.."`}},
		{"wildcard", `{name: b, match: ["GET /x/{t}/{rest...}"], upstream: api, strip_prefix: "/x/{t}"}`,
			[]string{`bad.yaml:4: routes[0].strip_prefix: must be a plain path such as "/billing": starting with '/', not ending with '/', no wildcard, escape or dot segment; got "/x/{t}"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "upstreams:\n  api: {url: \"http://127.0.0.1:9000\"}\nroutes:\n  - " + tt.route + "\n"
			_, err := Parse("bad.yaml", []byte(yaml), getenv)
			if tt.want == nil {
				if err != nil {
					t.Errorf("unexpected problems: %v", err)
				}
				return
			}
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
