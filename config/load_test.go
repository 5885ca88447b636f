package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
)

// testEnv is the environment every Parse in these tests sees.
var testEnv = map[string]string{
	"SET":      "from-env",
	"PORT_NUM": "7",
	"UP":       "api",
	"INDIRECT": "${SET}",
}

func getenv(name string) string { return testEnv[name] }

// badConfigs are files with exactly the problems in want, each "file:line: field: message".
// FuzzParse is seeded with them.
var badConfigs = []struct {
	name string
	yaml string
	want []string
}{
	{
		name: "unknown key suggests the near one",
		yaml: `listen: "127.0.0.1:8080"
ops_listne: "127.0.0.1:9090"
`,
		want: []string{`bad.yaml:2: ops_listne: unknown field (did you mean "ops_listen"?)`},
	},
	{
		name: "unknown key far from any",
		yaml: `store:
  type: memory
  flavour: vanilla
`,
		want: []string{`bad.yaml:3: store.flavour: unknown field`},
	},
	{
		name: "duration without unit",
		yaml: `upstreams:
  api:
    url: "http://127.0.0.1:9000"
    timeout: 30
`,
		want: []string{`bad.yaml:4: upstreams.api.timeout: invalid duration "30" (write e.g. 500ms, 30s, 1m, 2h)`},
	},
	{
		name: "int that is not a number",
		yaml: `store:
  cache:
    max_entries: lots
`,
		want: []string{`bad.yaml:3: store.cache.max_entries: invalid integer "lots"`},
	},
	{
		name: "bool that is not a bool",
		yaml: `log:
  level: info
  access_log: maybe
`,
		want: []string{`bad.yaml:3: log.access_log: invalid boolean "maybe" (write true or false)`},
	},
	{
		name: "list where a value is expected",
		yaml: `listen: [":8080"]
`,
		want: []string{`bad.yaml:1: listen: expected a single value, got a list`},
	},
	{
		name: "unknown upstream",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - {name: health, match: ["GET /health"], upstream: api, public: true}
  - name: reports
    match: ["GET /reports/{$}"]
    scopes: ["reports:read"]
    upstream: apii
`,
		want: []string{`bad.yaml:7: routes[1].upstream: unknown upstream "apii" (did you mean "api"?)`},
	},
	{
		name: "unknown upstream suggests the nearest of several",
		yaml: `upstreams: {apz: {url: "http://127.0.0.1:9001"}, api: {url: "http://127.0.0.1:9000"}, apx: {url: "http://127.0.0.1:9002"}}
routes:
  - {name: reports, match: ["GET /reports/{$}"], upstream: apii, public: true}
`,
		want: []string{`bad.yaml:3: routes[0].upstream: unknown upstream "apii" (did you mean "api"?)`},
	},
	{
		name: "problems on one line come in the same order every time",
		yaml: `upstreams: {c: {url: "ftp://c"}, a: {url: "ftp://a"}, b: {url: "ftp://b"}}
`,
		want: []string{
			`bad.yaml:1: upstreams.a.url: want an http:// or https:// URL with a host, got "ftp://a"`,
			`bad.yaml:1: upstreams.b.url: want an http:// or https:// URL with a host, got "ftp://b"`,
			`bad.yaml:1: upstreams.c.url: want an http:// or https:// URL with a host, got "ftp://c"`,
		},
	},
	{
		name: "invalid CIDR in ip_allowlist",
		yaml: `ip_allowlist:
  - 10.0.0.0/8
  - 10.0.0/8
`,
		want: []string{`bad.yaml:3: ip_allowlist[1]: invalid IP or CIDR "10.0.0/8"`},
	},
	{
		name: "invalid CIDR in trusted_proxies",
		yaml: `client_ip:
  trusted_proxies:
    - 192.168.0.0/33
`,
		want: []string{`bad.yaml:3: client_ip.trusted_proxies[0]: invalid IP or CIDR "192.168.0.0/33"`},
	},
	{
		name: "invalid CIDR in a route ip_allowlist",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: internal
    match: ["GET /internal/"]
    upstream: api
    public: true
    ip_allowlist: ["10.0.0.0/8", "office"]
`,
		want: []string{`bad.yaml:7: routes[0].ip_allowlist[1]: invalid IP or CIDR "office"`},
	},
	{
		name: "conflicting patterns name the other route",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: by-id
    match: ["GET /items/{id}/details"]
    upstream: api
    public: true
  - name: by-kind
    match:
      - "GET /items/new/{field}"
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:9: routes[1].match[0]: "GET /items/new/{field}" conflicts with routes[0].match[0] "GET /items/{id}/details": neither is more specific, so ServeMux cannot choose`},
	},
	{
		name: "duplicate pattern",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: a
    match: ["GET /a/{$}", "GET /same"]
    upstream: api
    public: true
  - name: b
    match: ["GET /same"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:8: routes[1].match[0]: "GET /same" is already registered by routes[0].match[1]`},
	},
	{
		name: "pattern inside the reserved auth prefix",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: login
    match: ["POST /api/auth/login"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:4: routes[0].match[0]: "POST /api/auth/login" overlaps the gateway's own path "/api/auth/"`},
	},
	{
		name: "wildcard pattern that would take requests from the reserved auth prefix",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: any-login
    match: ["/api/{svc}/login"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:4: routes[0].match[0]: "/api/{svc}/login" conflicts with the gateway's own path "/api/auth/"`},
	},
	{
		name: "invalid pattern syntax",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: broken
    match: ["GET /a/{b"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:4: routes[0].match[0]: invalid pattern "GET /a/{b": bad wildcard segment (must end with '}')`},
	},
	{
		name: "duplicate route name",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: reports
    match: ["GET /a"]
    upstream: api
    public: true
  - name: reports
    match: ["GET /b"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:7: routes[1].name: duplicate route name "reports" (also routes[0])`},
	},
	{
		name: "missing route name",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - match: ["GET /a"]
    upstream: api
    public: true
`,
		want: []string{`bad.yaml:3: routes[0].name: required`},
	},
	{
		name: "upstream URL scheme",
		yaml: `upstreams:
  api:
    url: "ftp://127.0.0.1:9000"
`,
		want: []string{`bad.yaml:3: upstreams.api.url: want an http:// or https:// URL with a host, got "ftp://127.0.0.1:9000"`},
	},
	{
		name: "unset variable without default",
		yaml: `store:
  type: redis
  redis:
    password: "${REDIS_PASSWORD}"
`,
		want: []string{`bad.yaml:4: store.redis.password: environment variable REDIS_PASSWORD is not set (write ${REDIS_PASSWORD:-} to allow empty)`},
	},
	{
		name: "tls with only cert_file",
		yaml: `listen: ":8443"
tls:
  cert_file: /etc/authgate/cert.pem
`,
		want: []string{`bad.yaml:2: tls: cert_file and key_file go together: set both or neither`},
	},
	{
		name: "redis rate limits with the memory store",
		yaml: `store:
  type: memory
rate_limits:
  mode: redis
`,
		want: []string{`bad.yaml:4: rate_limits.mode: redis mode needs store.type: redis`},
	},
	{
		name: "public route with scopes",
		yaml: `upstreams: {api: {url: "http://127.0.0.1:9000"}}
routes:
  - name: health
    match: ["GET /health"]
    upstream: api
    scopes: ["health:read"]
    public: true
`,
		want: []string{`bad.yaml:7: routes[0].public: a public route cannot require scopes`},
	},
	{
		name: "HMAC secret with RS256",
		yaml: `jwt:
  issuers:
    - issuer: "https://login.example.com/"
      hmac_secret: "${SET}"
      algorithms: ["HS256", "RS256"]
`,
		want: []string{`bad.yaml:5: jwt.issuers[0].algorithms[1]: RS256 cannot be checked with hmac_secret (algorithm confusion)`},
	},
	{
		name: "bootstrap admin without the issuer, with a short password",
		yaml: `bootstrap:
  admin_email: "root@example.com"
  admin_password: "short"
`,
		want: []string{
			`bad.yaml:2: bootstrap.admin_email: needs issuer.enabled: true (users sign in through the built-in issuer)`,
			`bad.yaml:3: bootstrap.admin_password: at least 10 characters, got 5`,
		},
	},
	{
		name: "bootstrap admin without an admin role",
		yaml: `issuer: {enabled: true, signing_key_file: "/tmp/k.pem"}
bootstrap:
  admin_email: "root@example.com"
  admin_password: "long enough password"
policy:
  roles:
    boss: ["*"]
`,
		want: []string{`bad.yaml:3: bootstrap.admin_email: the bootstrap user gets role "admin", which policy.roles lacks`},
	},
	{
		name: "external issuer named like the built-in one",
		yaml: `issuer: {enabled: true, name: "authgate", signing_key_file: "/tmp/k.pem"}
jwt:
  issuers:
    - issuer: "authgate"
      hmac_secret: "${SET}"
      algorithms: ["HS256"]
`,
		want: []string{`bad.yaml:4: jwt.issuers[0].issuer: "authgate" is issuer.name, the built-in issuer's; tokens could not be told apart`},
	},
	{
		name: "console without the issuer",
		yaml: `console: {enabled: true}
`,
		want: []string{`bad.yaml:1: console.enabled: the web console signs in with the built-in issuer: it needs issuer.enabled`},
	},
	{
		name: "console path without a trailing slash",
		yaml: `issuer: {enabled: true, signing_key_file: "/tmp/k.pem"}
console:
  enabled: true
  path: /admin
`,
		want: []string{`bad.yaml:4: console.path: must end with '/', got "/admin"`},
	},
	{
		name: "default_expiry_days not allowed",
		yaml: `api_keys:
  allowed_expiry_days: [30, 365]
  default_expiry_days: 90
`,
		want: []string{`bad.yaml:3: api_keys.default_expiry_days: 90 is not in allowed_expiry_days [30 365]`},
	},
	{
		name: "ops_listen equal to listen",
		yaml: `listen: "127.0.0.1:8080"
ops_listen: "127.0.0.1:8080"
`,
		want: []string{`bad.yaml:2: ops_listen: must differ from listen ("127.0.0.1:8080"): metrics are never served on the main listener`},
	},
	{
		name: "duplicate upstream key",
		yaml: `upstreams:
  api: {url: "http://127.0.0.1:9000"}
  api: {url: "http://127.0.0.1:9001"}
`,
		want: []string{`bad.yaml:3: upstreams.api: duplicate key`},
	},
	{
		name: "duplicate field",
		yaml: `listen: ":8080"
listen: ":8081"
`,
		want: []string{`bad.yaml:2: listen: duplicate field`},
	},
	{
		name: "invalid YAML on the first line",
		yaml: "\tlisten: \":8080\"\n",
		want: []string{`bad.yaml:1: invalid YAML: found character that cannot start any token`},
	},
	{
		name: "second YAML document",
		yaml: `listen: ":8080"
---
listen: ":9999"
`,
		want: []string{`bad.yaml:2: a second YAML document: the file must hold exactly one`},
	},
	{
		name: "invalid YAML in a second document",
		yaml: "listen: \":8080\"\n---\nlisten: [\n",
		want: []string{`bad.yaml:3: invalid YAML: did not find expected node content`},
	},
	{
		name: "not a mapping",
		yaml: "just words\n",
		want: []string{`bad.yaml:1: expected a mapping, got "just words"`},
	},
}

func TestParseBadConfigs(t *testing.T) {
	for _, tt := range badConfigs {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bad.yaml", []byte(tt.yaml), getenv)
			if cfg != nil {
				t.Errorf("got a config, want nil")
			}
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestConsoleWithIssuer: the console is accepted with the issuer on, and its path is
// then one of the gateway's own.
func TestConsoleWithIssuer(t *testing.T) {
	cfg, err := Parse("good.yaml", []byte(`issuer: {enabled: true, signing_key_file: "/tmp/k.pem"}
console: {enabled: true, path: /admin/}
`), getenv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !cfg.Console.Enabled || cfg.Console.Path != "/admin/" {
		t.Errorf("console = %+v", cfg.Console)
	}
	if rp := cfg.ReservedPatterns(); !slices.Contains(rp, "/admin/") {
		t.Errorf("ReservedPatterns() = %q, want /admin/ among them", rp)
	}
}

// problemLines asserts err is Problems and returns each one formatted.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error, want Problems")
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got error %T %q, want config.Problems", err, err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	if got, want := err.Error(), strings.Join(out, "\n"); got != want {
		t.Errorf("Problems.Error() = %q, want the problems one per line %q", got, want)
	}
	return out
}

func equal(a, b []string) bool { return reflect.DeepEqual(a, b) }

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "validation problems",
			yaml: `listen: ":8080"
ops_listen: ":8080"
ip_allowlist: ["10.0.0.0/8", "nope"]
upstreams:
  zeta: {url: "ftp://z"}
  alpha: {url: "http://127.0.0.1:9000", timeout: 1s}
rate_limits:
  jwt: {requests: 0, per: 1m}
routes:
  - name: a
    match: ["GET /a"]
    upstream: alpah
    public: true
  - match: ["GET /a"]
    upstream: alpha
    scopes: ["bad scope"]
`,
			want: []string{
				`bad.yaml:2: ops_listen: must differ from listen (":8080"): metrics are never served on the main listener`,
				`bad.yaml:3: ip_allowlist[1]: invalid IP or CIDR "nope"`,
				`bad.yaml:5: upstreams.zeta.url: want an http:// or https:// URL with a host, got "ftp://z"`,
				`bad.yaml:8: rate_limits.jwt.requests: must be > 0, got 0`,
				`bad.yaml:12: routes[0].upstream: unknown upstream "alpah" (did you mean "alpha"?)`,
				`bad.yaml:14: routes[1].name: required`,
				`bad.yaml:14: routes[1].match[0]: "GET /a" is already registered by routes[0].match[0]`,
				`bad.yaml:16: routes[1].scopes[0]: invalid scope "bad scope"`,
			},
		},
		{
			// Environment problems are found before unknown keys; they are still reported
			// in file order.
			name: "structure and environment problems",
			yaml: `listen: "${LISTEN_ADDR}"
lissen: ":8080"
server:
  idle_timeout: forever
store:
  redis:
    password: "${REDIS_PASSWORD}"
    db: one
`,
			want: []string{
				`bad.yaml:1: listen: environment variable LISTEN_ADDR is not set (write ${LISTEN_ADDR:-} to allow empty)`,
				`bad.yaml:2: lissen: unknown field (did you mean "listen"?)`,
				`bad.yaml:4: server.idle_timeout: invalid duration "forever" (write e.g. 500ms, 30s, 1m, 2h)`,
				`bad.yaml:7: store.redis.password: environment variable REDIS_PASSWORD is not set (write ${REDIS_PASSWORD:-} to allow empty)`,
				`bad.yaml:8: store.redis.db: invalid integer "one"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml), getenv)
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			var ps Problems
			errors.As(err, &ps)
			for i := 1; i < len(ps); i++ {
				if ps[i].Line < ps[i-1].Line {
					t.Errorf("problem %d is on line %d, after line %d: want file order", i, ps[i].Line, ps[i-1].Line)
				}
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte("listen: \":8080\"\nroutes:\n  - name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, getenv)
	got := problemLines(t, err)
	want := []string{
		`gateway.yaml:3: routes[0].match: at least one pattern is required`,
		`gateway.yaml:3: routes[0].upstream: required`,
	}
	if !equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), getenv)
	var ps Problems
	if err == nil || errors.As(err, &ps) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want a not-exist error that is not Problems", err)
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		got  func(*Config) any
		want any
	}{
		{"set variable", `store: {redis: {username: "${SET}"}}`, func(c *Config) any { return c.Store.Redis.Username }, "from-env"},
		{"default used when unset", `store: {redis: {username: "${NOPE:-fallback}"}}`, func(c *Config) any { return c.Store.Redis.Username }, "fallback"},
		{"default ignored when set", `store: {redis: {username: "${SET:-fallback}"}}`, func(c *Config) any { return c.Store.Redis.Username }, "from-env"},
		{"empty default", `store: {redis: {password: "${NOPE:-}"}}`, func(c *Config) any { return c.Store.Redis.Password.Value() }, ""},
		{"several in one value", `upstreams: {api: {url: "http://${NOPE:-127.0.0.1}:${PORT_NUM}0"}}`, func(c *Config) any { return c.Upstreams["api"].URL }, "http://127.0.0.1:70"},
		{"in a list", `ip_allowlist: ["${NOPE:-10.0.0.0/8}", "${NOPE:-::1}"]`, func(c *Config) any { return c.IPAllowlist }, []string{"10.0.0.0/8", "::1"}},
		{"not recursive", `store: {redis: {username: "${INDIRECT}"}}`, func(c *Config) any { return c.Store.Redis.Username }, "${SET}"},
		{"plain default decodes as int", "store:\n  redis:\n    db: ${NOPE_NUM:-5}\n", func(c *Config) any { return c.Store.Redis.DB }, 5},
		{"plain variable decodes as int", "store:\n  redis:\n    db: ${PORT_NUM:-5}\n", func(c *Config) any { return c.Store.Redis.DB }, 7},
		{"plain default decodes as bool", "issuer:\n  enabled: ${NOPE:-true}\n", func(c *Config) any { return c.Issuer.Enabled }, true},
		{"plain default decodes as duration", "jwt:\n  leeway: ${NOPE:-45s}\n", func(c *Config) any { return c.JWT.Leeway }, 45 * time.Second},
		{"quoted value stays a string", `store: {redis: {username: "${NOPE:-007}"}}`, func(c *Config) any { return c.Store.Redis.Username }, "007"},
		{"comments are not expanded", "# ${NOPE} is not needed\nlisten: \":8080\" # ${NOPE}\n", func(c *Config) any { return c.Listen }, ":8080"},
		{"dollar without braces is literal", `store: {redis: {username: "$SET"}}`, func(c *Config) any { return c.Store.Redis.Username }, "$SET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(tt.yaml), getenv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.got(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestExpandRefusals(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "quoted int stays a string",
			yaml: `store: {redis: {db: "${PORT_NUM:-5}"}}`,
			want: []string{`x.yaml:1: store.redis.db: invalid integer "7"`},
		},
		{
			name: "quoted bool stays a string",
			yaml: `issuer: {enabled: "${NOPE:-true}"}`,
			want: []string{`x.yaml:1: issuer.enabled: invalid boolean "true" (write true or false)`},
		},
		{
			name: "set but empty counts as unset",
			yaml: "listen: \"${EMPTY}\"\n",
			want: []string{`x.yaml:1: listen: environment variable EMPTY is not set (write ${EMPTY:-} to allow empty)`},
		},
		{
			name: "never in keys",
			yaml: "${SET}: x\n",
			want: []string{`x.yaml:1: ${SET}: unknown field`},
		},
		{
			name: "never in map keys",
			yaml: "upstreams:\n  \"${UP}\": {url: \"http://127.0.0.1:9000\"}\n",
			want: []string{`x.yaml:2: upstreams.${UP}: upstream names use letters, digits, '_', '.', '-'`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml), getenv)
			if got := problemLines(t, err); !equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen", d.Listen, ":8080"},
		{"ops_listen", d.OpsListen, "127.0.0.1:9090"},
		{"tls.enabled", d.TLS.Enabled(), false},
		{"server.read_header_timeout", d.Server.ReadHeaderTimeout, 10 * time.Second},
		{"server.read_timeout", d.Server.ReadTimeout, time.Duration(0)},
		{"server.idle_timeout", d.Server.IdleTimeout, 120 * time.Second},
		{"server.max_header_bytes", d.Server.MaxHeaderBytes, 65536},
		{"server.drain_delay", d.Server.DrainDelay, time.Duration(0)},
		{"server.shutdown_timeout", d.Server.ShutdownTimeout, 30 * time.Second},
		{"store.type", d.Store.Type, "memory"},
		{"store.redis.addrs", d.Store.Redis.Addrs, []string{"127.0.0.1:6379"}},
		{"store.redis.key_prefix", d.Store.Redis.KeyPrefix, "authgate:"},
		{"store.cache.ttl", d.Store.Cache.TTL, 30 * time.Second},
		{"store.cache.max_entries", d.Store.Cache.MaxEntries, 100000},
		{"store.cache.stale_ttl", d.Store.Cache.StaleTTL, 5 * time.Minute},
		{"store.on_store_error", d.Store.OnStoreError, "serve_cached"},
		{"jwt.leeway", d.JWT.Leeway, 30 * time.Second},
		{"issuer.enabled", d.Issuer.Enabled, false},
		{"issuer.name", d.Issuer.Name, "authgate"},
		{"issuer.access_ttl", d.Issuer.AccessTTL, time.Hour},
		{"issuer.refresh_ttl", d.Issuer.RefreshTTL, 168 * time.Hour},
		{"issuer.refresh_reuse_grace", d.Issuer.RefreshReuseGrace, 5 * time.Second},
		{"issuer.mfa", d.Issuer.MFA, "optional"},
		{"auth_api.prefix", d.AuthAPI.Prefix, "/api/auth"},
		{"auth_api.refresh_token_path", d.AuthAPI.RefreshTokenPath, "/api/refresh_token"},
		{"api_keys.prefix", d.APIKeys.Prefix, "sk"},
		{"api_keys.allowed_expiry_days", d.APIKeys.AllowedExpiryDays, []int{30, 90, 365, 0}},
		{"api_keys.default_expiry_days", d.APIKeys.DefaultExpiryDays, 90},
		{"rate_limits.jwt", d.RateLimits.JWT, RateLimit{Requests: 1000, Per: time.Minute}},
		{"rate_limits.api_key", d.RateLimits.APIKey, RateLimit{Requests: 100, Per: time.Minute}},
		{"rate_limits.login", d.RateLimits.Login, RateLimit{Requests: 10, Per: time.Minute}},
		{"log.level", d.Log.Level, "info"},
		{"log.access_log", d.Log.AccessLog, true},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default() %s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
}

var defaultRoles = map[string][]string{
	"admin":  {"*"},
	"member": {"reports:*", "dashboards:*", "goals:read", "usage:read", "keys:manage"},
	"viewer": {"reports:read", "dashboards:read", "goals:read", "usage:read", "keys:manage"},
}

func TestApplyDefaults(t *testing.T) {
	const api = "upstreams: {api: {url: \"http://127.0.0.1:9000\"}}\n"
	tests := []struct {
		name string
		yaml string
		got  func(*Config) any
		want any
	}{
		{"upstream timeout absent", api, func(c *Config) any { return c.Upstreams["api"].Timeout }, 30 * time.Second},
		{"upstream timeout set", `upstreams: {api: {url: "http://127.0.0.1:9000", timeout: 5s}}`, func(c *Config) any { return c.Upstreams["api"].Timeout }, 5 * time.Second},
		{"route rate_limit per absent", api + `routes: [{name: r, match: ["/r"], upstream: api, rate_limit: {requests: 5}}]`,
			func(c *Config) any { return *c.Routes[0].RateLimit }, RateLimit{Requests: 5, Per: time.Minute}},
		{"route rate_limit per set", api + `routes: [{name: r, match: ["/r"], upstream: api, rate_limit: {requests: 5, per: 10s}}]`,
			func(c *Config) any { return *c.Routes[0].RateLimit }, RateLimit{Requests: 5, Per: 10 * time.Second}},
		{"route rate_limit absent", api + `routes: [{name: r, match: ["/r"], upstream: api}]`,
			func(c *Config) any { return c.Routes[0].RateLimit }, (*RateLimit)(nil)},
		{"method rate limit per absent", `rate_limits: {api_key: {requests: 7}}`, func(c *Config) any { return c.RateLimits.APIKey }, RateLimit{Requests: 7, Per: time.Minute}},
		{"mode with memory store", `store: {type: memory}`, func(c *Config) any { return c.RateLimits.Mode }, "local"},
		{"mode with redis store", `store: {type: redis}`, func(c *Config) any { return c.RateLimits.Mode }, "redis"},
		{"mode local kept with redis store", "store: {type: redis}\nrate_limits: {mode: local}", func(c *Config) any { return c.RateLimits.Mode }, "local"},
		{"roles absent", `listen: ":8080"`, func(c *Config) any { return c.Policy.Roles }, defaultRoles},
		{"policy without roles", `policy: {}`, func(c *Config) any { return c.Policy.Roles }, defaultRoles},
		{"roles given replace the defaults", `policy: {roles: {ops: ["metrics:read"]}}`, func(c *Config) any { return c.Policy.Roles },
			map[string][]string{"ops": {"metrics:read"}}},
		{"empty roles stay empty", `policy: {roles: {}}`, func(c *Config) any { return c.Policy.Roles }, map[string][]string{}},
		{"access_log false kept", `log: {access_log: false}`, func(c *Config) any { return c.Log.AccessLog }, false},
		{"null keeps the default", "listen: ~\nstore: ~\n", func(c *Config) any { return c.Listen + " " + c.Store.Type }, ":8080 memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(tt.yaml), getenv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.got(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	want := Default()
	want.RateLimits.Mode = "local"
	want.Policy.Roles = defaultRoles
	for _, data := range []string{"", "\n", "# only a comment\n", "---\n", "~\n", "---\n---\n"} {
		cfg, err := Parse("empty.yaml", []byte(data), getenv)
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		if !reflect.DeepEqual(*cfg, want) {
			t.Errorf("Parse(%q) = %+v, want %+v", data, *cfg, want)
		}
	}
}

func TestEmbeddedDefaultConfig(t *testing.T) {
	cfg, err := Parse("gateway.yaml", authgate.DefaultConfig, func(string) string { return "" })
	if err != nil {
		t.Fatalf("embedded gateway.yaml: %v", err)
	}
	var names []string
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen", cfg.Listen, ":8080"},
		{"ops_listen", cfg.OpsListen, "127.0.0.1:9090"},
		{"store.type", cfg.Store.Type, "memory"},
		{"rate_limits.mode", cfg.RateLimits.Mode, "local"},
		{"upstreams.api.url", cfg.Upstreams["api"].URL, "http://127.0.0.1:9000"},
		{"routes", names, []string{"reports-read", "reports-generate", "health"}},
		{"routes[2].public", cfg.Routes[2].Public, true},
		{"policy.roles", cfg.Policy.Roles, defaultRoles},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}

	env := map[string]string{"AUTHGATE_LISTEN": "127.0.0.1:18080", "AUTHGATE_UPSTREAM": "http://127.0.0.1:19000"}
	cfg, err = Parse("gateway.yaml", authgate.DefaultConfig, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("embedded gateway.yaml with environment: %v", err)
	}
	if cfg.Listen != env["AUTHGATE_LISTEN"] || cfg.Upstreams["api"].URL != env["AUTHGATE_UPSTREAM"] {
		t.Errorf("got listen %q upstream %q, want %q %q", cfg.Listen, cfg.Upstreams["api"].URL, env["AUTHGATE_LISTEN"], env["AUTHGATE_UPSTREAM"])
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-do-not-print"
	cfg, err := Parse("x.yaml", []byte("store:\n  redis:\n    password: \"${PW}\"\nbootstrap:\n  admin_key: \"${PW}\"\n"),
		func(k string) string {
			if k == "PW" {
				return value
			}
			return ""
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Store.Redis.Password.Value(); got != value {
		t.Fatalf("Value() = %q, want %q", got, value)
	}
	slogJSON := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", args...)
		return buf.String()
	}
	slogText := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", args...)
		return buf.String()
	}
	jsonMarshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	s := cfg.Store.Redis.Password
	tests := []struct {
		name string
		out  string
	}{
		{"Sprint", fmt.Sprint(s)},
		{"%v", fmt.Sprintf("%v", s)},
		{"%s", fmt.Sprintf("%s", s)},
		{"%q", fmt.Sprintf("%q", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%v of the config", fmt.Sprintf("%v", *cfg)},
		{"%+v of the config", fmt.Sprintf("%+v", *cfg)},
		{"%#v of the config", fmt.Sprintf("%#v", *cfg)},
		{"slog JSON attr", slogJSON("password", s)},
		{"slog JSON struct", slogJSON("redis", cfg.Store.Redis, "bootstrap", cfg.Bootstrap)},
		{"slog JSON config", slogJSON("config", cfg)},
		{"slog text config", slogText("config", cfg)},
		{"encoding/json", jsonMarshal(cfg)},
	}
	for _, tt := range tests {
		if strings.Contains(tt.out, value) {
			t.Errorf("%s printed the secret: %s", tt.name, tt.out)
		}
		if !strings.Contains(tt.out, "REDACTED") {
			t.Errorf("%s = %s, want it to contain REDACTED", tt.name, tt.out)
		}
	}
}

// TestParseRefusesAliasBomb: a small file whose aliases expand to millions of values is
// refused instead of being walked for minutes.
func TestParseRefusesAliasBomb(t *testing.T) {
	const n = 3000 // 3000 routes, each aliasing a 3000-pattern list: 9 million values in 24 KB
	var b strings.Builder
	b.WriteString("upstreams: {api: {url: \"http://127.0.0.1:9000\"}}\nip_denylist: &m [")
	b.WriteString(strings.Repeat(`"/a",`, n))
	b.WriteString("]\nconsole: {path: &r {name: a, match: *m, upstream: api}}\nroutes: [")
	b.WriteString(strings.Repeat("*r,", n))
	b.WriteString("]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), getenv)
	got := problemLines(t, err)
	want := []string{
		`bomb.yaml:2: aliases expand to too many values`,
		`bomb.yaml:3: console.path: expected a single value, got a mapping`,
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "bomb.yaml:2: routes[") || !strings.HasSuffix(got[0], "]: aliases expand to too many values") || got[1] != want[1] {
		t.Errorf("got %q, want %q (with the path of the value where the walk stopped)", got, want)
	}
}

// TestEphemeralPortsMayRepeat: "127.0.0.1:0" twice asks for two different free ports, so
// it is not the "ops_listen equals listen" mistake.
func TestEphemeralPortsMayRepeat(t *testing.T) {
	data := "listen: \"127.0.0.1:0\"\nops_listen: \"127.0.0.1:0\"\n"
	if _, err := Parse("ok.yaml", []byte(data), func(string) string { return "" }); err != nil {
		t.Fatalf("Parse = %v, want no problem", err)
	}
}
