package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/config"
)

// TestScenarioConfigs checks every scenario's generated configuration the way authgate
// will load it, so a broken row fails `go test` rather than `make bench`.
func TestScenarioConfigs(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if seen[sc.name] {
				t.Fatalf("duplicate scenario name %q", sc.name)
			}
			seen[sc.name] = true
			if !strings.HasPrefix(sc.path, "/") {
				t.Errorf("path %q: want a leading /", sc.path)
			}
			if http.StatusText(sc.want) == "" {
				t.Errorf("want %d: not an HTTP status", sc.want)
			}
			if sc.ref != "" && !slices.ContainsFunc(scenarios, func(o scenario) bool { return o.name == sc.ref && o.name != sc.name }) {
				t.Errorf("ref %q: no such other scenario", sc.ref)
			}
			if sc.gateway == "" {
				return // the bare proxy
			}
			env := map[string]string{}
			for _, kv := range append(slices.Clone(sc.env), keys.env()...) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			if sc.redis {
				env[envRedisAddr] = "127.0.0.1:6379" // the run's redis-server, in a run
			}
			yaml := gatewayConfig("127.0.0.1:18080", "127.0.0.1:19090", "http://127.0.0.1:9000", sc.gateway)
			cfg, err := config.Parse(sc.name+".yaml", []byte(yaml), func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("generated config does not load: %v\n%s", err, yaml)
			}
			if cfg.Log.AccessLog {
				t.Error("access log on: the benchmark would measure log writing")
			}
			// A redis row measures Redis limits on a Redis store; every other row local ones.
			wantStore, wantMode := "memory", "local"
			if sc.redis {
				wantStore, wantMode = "redis", "redis"
			}
			if cfg.Store.Type != wantStore || cfg.RateLimits.Mode != wantMode {
				t.Errorf("store.type %q, rate_limits.mode %q; want %q, %q", cfg.Store.Type, cfg.RateLimits.Mode, wantStore, wantMode)
			}
			if sc.redis && !slices.Equal(cfg.Store.Redis.Addrs, []string{"127.0.0.1:6379"}) {
				t.Errorf("store.redis.addrs = %q, want the run's redis-server from $%s", cfg.Store.Redis.Addrs, envRedisAddr)
			}
		})
	}
	if !seen[baseline] {
		t.Errorf("no %q scenario: every row is compared with it", baseline)
	}
}
