package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// routeLimitsBase is an upstream for the route-limit tests.
const routeLimitsBase = "upstreams:\n  api:\n    url: \"http://127.0.0.1:9000\"\n"

// TestRouteLimitsRefused: each new route-limit key refuses what it cannot mean, with
// file:line and the field.
func TestRouteLimitsRefused(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"per_ip requests 0", "rate_limits:\n  per_ip: {requests: 0}\n",
			[]string{`gw.yaml:2: rate_limits.per_ip.requests: must be > 0, got 0`}},
		{"per_ip per 0s", "rate_limits:\n  per_ip:\n    requests: 5\n    per: 0s\n",
			[]string{`gw.yaml:4: rate_limits.per_ip.per: must be > 0, got 0s (leave it out for the default 1m)`}},
		{"public route rate_limit requests 0", routeLimitsBase + "routes:\n  - name: r\n    match: [\"/r\"]\n    upstream: api\n    public: true\n    rate_limit: {requests: 0}\n",
			[]string{`gw.yaml:9: routes[0].rate_limit.requests: must be > 0, got 0`}},
		{"proxy max_body_bytes 0", "proxy:\n  max_body_bytes: 0\n",
			[]string{`gw.yaml:2: proxy.max_body_bytes: must be > 0 (bytes), or -1 for no bound, got 0 (leave it out for the default)`}},
		{"proxy max_body_bytes -2", "proxy: {max_body_bytes: -2}\n",
			[]string{`gw.yaml:1: proxy.max_body_bytes: must be > 0 (bytes), or -1 for no bound, got -2 (leave it out for the default)`}},
		{"proxy max_body_bytes a size string", "proxy: {max_body_bytes: 10MiB}\n",
			[]string{`gw.yaml:1: proxy.max_body_bytes: invalid value "10MiB"`}},
		{"route max_body_bytes 0", routeLimitsBase + "routes:\n  - name: r\n    match: [\"/r\"]\n    upstream: api\n    max_body_bytes: 0\n",
			[]string{`gw.yaml:8: routes[0].max_body_bytes: must be > 0 (bytes), or -1 for no bound, got 0 (leave it out for the default)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(tt.yaml), getenv)
			if cfg != nil {
				t.Errorf("got a config, want the file refused")
			}
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestRouteLimitsDefaults: absent keys get their documented defaults.
func TestRouteLimitsDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		got  func(*Config) any
		want any
	}{
		{"per_ip absent: off", "", func(c *Config) any { return c.RateLimits.PerIP }, (*RateLimit)(nil)},
		{"per_ip null: off", "rate_limits: {per_ip: ~}\n", func(c *Config) any { return c.RateLimits.PerIP }, (*RateLimit)(nil)},
		{"per_ip per absent", "rate_limits: {per_ip: {requests: 50}}\n", func(c *Config) any { return *c.RateLimits.PerIP },
			RateLimit{Requests: 50, Per: time.Minute}},
		{"public route rate_limit accepted", routeLimitsBase + `routes: [{name: r, match: ["/r"], upstream: api, public: true, rate_limit: {requests: 5, per: 1s}}]`,
			func(c *Config) any { return *c.Routes[0].RateLimit }, RateLimit{Requests: 5, Per: time.Second}},
		{"max_body_bytes absent: 10 MiB", routeLimitsBase + `routes: [{name: r, match: ["/r"], upstream: api}]`,
			func(c *Config) any { return []int64{c.Proxy.MaxBodyBytes, c.MaxBodyOf(c.Routes[0])} }, []int64{10 << 20, 10 << 20}},
		{"max_body_bytes null: 10 MiB", "proxy: {max_body_bytes: ~}\n", func(c *Config) any { return c.Proxy.MaxBodyBytes }, int64(10 << 20)},
		{"route max_body_bytes over the global", routeLimitsBase + "proxy: {max_body_bytes: -1}\n" +
			`routes: [{name: r, match: ["/r"], upstream: api, max_body_bytes: 2048}, {name: s, match: ["/s"], upstream: api}]`,
			func(c *Config) any { return []int64{c.MaxBodyOf(c.Routes[0]), c.MaxBodyOf(c.Routes[1])} }, []int64{2048, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(tt.yaml), getenv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.got(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// corsRoute is a route with the cors block given (YAML flow mapping) on line 8.
func corsRoute(cors string) string {
	return routeLimitsBase + "routes:\n  - name: r\n    match: [\"/r\"]\n    upstream: api\n    cors: " + cors + "\n"
}

// TestCORSRefused: a CORS policy a browser would misread, or that allows more than it
// says, is refused at load with its line.
func TestCORSRefused(t *testing.T) {
	tests := []struct {
		name, cors string
		want       []string
	}{
		{"no origins", `{allowed_methods: [GET]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins: at least one origin is required (e.g. "https://app.example.com", or "*")`}},
		{"* with credentials", `{allowed_origins: ["*"], allow_credentials: true}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[0]: "*" cannot go with allow_credentials: true (browsers refuse it): list the origins`}},
		{"* among others", `{allowed_origins: ["https://a.example.com", "*"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[1]: "*" allows every origin: list it alone`}},
		{"origin with a slash", `{allowed_origins: ["https://a.example.com/"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[0]: an origin is scheme://host[:port] with nothing after (no path, not even "/"): "https://a.example.com/"`}},
		{"origin without scheme", `{allowed_origins: ["a.example.com"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[0]: not an origin (scheme://host[:port]): "a.example.com"`}},
		{"origin in upper case", `{allowed_origins: ["https://App.example.com"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[0]: write origins in lower case, as browsers send them: "https://App.example.com"`}},
		{"wildcard inside the host", `{allowed_origins: ["https://a.*.example.com"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_origins[0]: a wildcard is only "*." at the start of the host: "https://a.*.example.com"`}},
		{"method in lower case", `{allowed_origins: ["https://a.example.com"], allowed_methods: [get]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_methods[0]: not a method (upper case, e.g. GET): "get"`}},
		{"header name", `{allowed_origins: ["https://a.example.com"], allowed_headers: ["X Bad"], expose_headers: ["a:b"]}`,
			[]string{`gw.yaml:8: routes[0].cors.allowed_headers[0]: not a header name: "X Bad"`,
				`gw.yaml:8: routes[0].cors.expose_headers[0]: not a header name: "a:b"`}},
		{"negative max_age", `{allowed_origins: ["https://a.example.com"], max_age: -1s}`,
			[]string{`gw.yaml:8: routes[0].cors.max_age: must not be negative, got -1s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(corsRoute(tt.cors)), getenv)
			if cfg != nil {
				t.Errorf("got a config, want the file refused")
			}
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestCORSAccepted: origins as browsers send them, subdomain wildcards, "*" alone.
func TestCORSAccepted(t *testing.T) {
	for _, cors := range []string{
		`{allowed_origins: ["*"]}`,
		`{allowed_origins: ["https://app.example.com", "http://localhost:3000", "https://*.example.org"], allow_credentials: true, max_age: 10m}`,
		`{allowed_origins: ["capacitor://localhost"], allowed_methods: [GET, POST], allowed_headers: [Authorization], expose_headers: [X-Request-Id]}`,
	} {
		cfg, err := Parse("gw.yaml", []byte(corsRoute(cors)), getenv)
		if err != nil {
			t.Errorf("%s: %v", cors, err)
			continue
		}
		if cfg.Routes[0].CORS == nil || len(cfg.Routes[0].CORS.AllowedOrigins) == 0 {
			t.Errorf("%s: cors not read: %+v", cors, cfg.Routes[0].CORS)
		}
	}
}
