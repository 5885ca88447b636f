package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFaultAlso4_ExplicitZeroRefused: a zero written in the file for a duration whose
// default applies only when absent is refused with file:line: field, never replaced by
// the default.
func TestFaultAlso4_ExplicitZeroRefused(t *testing.T) {
	const api = "upstreams:\n  api:\n    url: \"http://127.0.0.1:9000\"\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"upstream timeout 0s", api + "    timeout: 0s\n",
			`gw.yaml:4: upstreams.api.timeout: must be > 0, got 0s (leave it out for the default 30s)`},
		{"upstream timeout bare 0", api + "    timeout: 0\n",
			`gw.yaml:4: upstreams.api.timeout: invalid duration "0" (write e.g. 500ms, 30s, 1m, 2h)`},
		{"api_key per 0s", "rate_limits:\n  api_key:\n    requests: 5\n    per: 0s\n",
			`gw.yaml:4: rate_limits.api_key.per: must be > 0, got 0s (leave it out for the default 1m)`},
		{"login_global per 0s", "rate_limits:\n  login_global: {requests: 5, per: 0s}\n",
			`gw.yaml:2: rate_limits.login_global.per: must be > 0, got 0s (leave it out for the default 1m)`},
		{"management per 0s", "rate_limits:\n  management:\n    per: 0s\n",
			`gw.yaml:3: rate_limits.management.per: must be > 0, got 0s (leave it out for the default 1m)`},
		{"route rate_limit per 0s", api + "routes:\n  - name: r\n    match: [\"/r\"]\n    upstream: api\n    rate_limit:\n      requests: 5\n      per: 0s\n",
			`gw.yaml:10: routes[0].rate_limit.per: must be > 0, got 0s (leave it out for the default 1m)`},
		{"env expanding to 0s", api + "    timeout: ${ZERO:-0s}\n",
			`gw.yaml:4: upstreams.api.timeout: must be > 0, got 0s (leave it out for the default 30s)`},
		{"other explicit zero", "server:\n  idle_timeout: 0s\n", `gw.yaml:2: server.idle_timeout: must be > 0, got 0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(tt.yaml), getenv)
			if cfg != nil {
				t.Errorf("got a config (%+v), want the file refused", cfg.Upstreams)
			}
			if got := problemLines(t, err); !equal(got, []string{tt.want}) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), tt.want)
			}
		})
	}
}

// TestFaultAlso4_AbsentOrNullGetsDefault: leaving the field out (or null, or an
// environment variable expanding to nothing) still gives the default, and the zeros
// documented as meaningful stay accepted.
func TestFaultAlso4_AbsentOrNullGetsDefault(t *testing.T) {
	const api = "upstreams: {api: {url: \"http://127.0.0.1:9000\"}}\n"
	tests := []struct {
		name string
		yaml string
		got  func(*Config) any
		want any
	}{
		{"upstream timeout absent", api, func(c *Config) any { return c.Upstreams["api"].Timeout }, 30 * time.Second},
		{"upstream timeout null", `upstreams: {api: {url: "http://127.0.0.1:9000", timeout: ~}}`,
			func(c *Config) any { return c.Upstreams["api"].Timeout }, 30 * time.Second},
		{"upstream timeout from empty env", "upstreams:\n  api:\n    url: \"http://127.0.0.1:9000\"\n    timeout: ${NOPE:-}\n",
			func(c *Config) any { return c.Upstreams["api"].Timeout }, 30 * time.Second},
		{"api_key per absent", `rate_limits: {api_key: {requests: 7}}`, func(c *Config) any { return c.RateLimits.APIKey },
			RateLimit{Requests: 7, Per: time.Minute}},
		{"route per absent", api + `routes: [{name: r, match: ["/r"], upstream: api, rate_limit: {requests: 5}}]`,
			func(c *Config) any { return *c.Routes[0].RateLimit }, RateLimit{Requests: 5, Per: time.Minute}},
		{"documented zeros", "server: {read_timeout: 0s, body_timeout: 0s, write_timeout: 0s, drain_delay: 0s}\n" +
			"password_hashing: {concurrency: 0, queue: 0, max_wait: 0s}\nstore: {redis: {max_retries: 0}}\njwt: {leeway: 0s}\n",
			func(c *Config) any {
				return []any{c.Server.ReadTimeout, c.Server.BodyTimeout, c.Server.WriteTimeout, c.Server.DrainDelay,
					c.PasswordHashing, c.Store.Redis.MaxRetries, c.JWT.Leeway}
			},
			[]any{time.Duration(0), time.Duration(0), time.Duration(0), time.Duration(0), PasswordHashing{}, 0, time.Duration(0)}},
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
