package config

import (
	"strings"
	"testing"
	"time"
)

// TestReview03_12_10_ConfigKeys: the defaults of the header-hygiene and timeout keys, a
// route's method_override winning over proxy.method_override, and the refusals of bad
// values, each naming its line and field.
func TestReview03_12_10_ConfigKeys(t *testing.T) {
	d := Default()
	if d.Proxy.MethodOverride != "strip" || len(d.Proxy.StripRequestHeaders) != 0 {
		t.Errorf("proxy defaults = %+v, want strip and no extra headers", d.Proxy)
	}
	if d.Server.BodyTimeout != 60*time.Second || d.Server.WriteTimeout != 0 || d.Server.ReadHeaderTimeout != 10*time.Second {
		t.Errorf("server defaults = %+v", d.Server)
	}
	cfg, err := Parse("ok.yaml", []byte(`upstreams: {api: {url: "http://127.0.0.1:9000"}}
proxy: {method_override: reject}
routes:
  - {name: a, match: ["/a/"], upstream: api, public: true}
  - {name: b, match: ["/b/"], upstream: api, public: true, method_override: strip}
`), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MethodOverrideOf(cfg.Routes[0]); got != "reject" {
		t.Errorf("route a: %q, want reject (from proxy.method_override)", got)
	}
	if got := cfg.MethodOverrideOf(cfg.Routes[1]); got != "strip" {
		t.Errorf("route b: %q, want strip (its own)", got)
	}

	_, err = Parse("bad.yaml", []byte(`server: {body_timeout: -1s, write_timeout: -1s}
upstreams: {api: {url: "http://127.0.0.1:9000"}}
proxy:
  method_override: drop
  strip_request_headers: ["X-Ok", "bad header"]
routes:
  - {name: a, match: ["/a/"], upstream: api, public: true, method_override: allow}
`), getenv)
	got := strings.Join(problemLines(t, err), "\n")
	for _, want := range []string{
		`server.body_timeout: must not be negative`,
		`server.write_timeout: must not be negative`,
		`proxy.method_override: must be one of strip, reject, got "drop"`,
		`proxy.strip_request_headers[1]: not a header name: "bad header"`,
		`routes[0].method_override: must be one of strip, reject, got "allow"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
