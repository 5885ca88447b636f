package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/ratelimit"
)

// neverRefuse is the request rate, and the burst, a row's limit must allow so that no
// run ever sees a 429: 25 times the fastest row measured on the 2-core machine (the 401
// rejection, ~41,000 req/s), and far beyond what any run's connections can send.
const neverRefuse = 1_000_000

// rowConfig parses sc's generated configuration as authgate would.
func rowConfig(t *testing.T, sc scenario) *config.Config {
	t.Helper()
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envRedisAddr: "127.0.0.1:6379"}
	for _, kv := range append(slices.Clone(sc.env), keys.env()...) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	yaml := gatewayConfig("127.0.0.1:18080", "127.0.0.1:19090", "http://127.0.0.1:9000", sc.gateway)
	cfg, err := config.Parse(sc.name+".yaml", []byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	return cfg
}

// TestLimitsNeverRefuse: every limit a row's credential can fall under (the method
// defaults and any route's own) allows at least neverRefuse requests per second, with a
// burst as large, so rows measure the limiter's work and never its refusals.
func TestLimitsNeverRefuse(t *testing.T) {
	limited := 0
	for _, sc := range scenarios {
		if sc.gateway == "" {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			cfg := rowConfig(t, sc)
			limits := map[string]config.RateLimit{"rate_limits.api_key": cfg.RateLimits.APIKey, "rate_limits.jwt": cfg.RateLimits.JWT}
			for _, r := range cfg.Routes {
				if r.RateLimit != nil {
					limits["routes."+r.Name+".rate_limit"] = *r.RateLimit
				}
			}
			for name, l := range limits {
				perSecond := float64(l.Requests) / l.Per.Seconds()
				if perSecond < neverRefuse || l.Requests < neverRefuse {
					t.Errorf("%s: %d per %s = %.0f/s with a burst of %d; want both >= %d",
						name, l.Requests, l.Per, perSecond, l.Requests, neverRefuse)
				}
			}
			limited++
		})
	}
	if limited < 6 {
		t.Errorf("%d rows with a gateway checked, want at least 6", limited)
	}
}

// TestLocalLimitNeverRefuses runs the local limiter the rows use on their limit: a
// burst of 200,000 requests in one instant (more than any run's round sends per second)
// is allowed whole. The default limit, which the rows had before, refuses the 101st: the
// check can see a refusal.
func TestLocalLimitNeverRefuses(t *testing.T) {
	cfg := rowConfig(t, scenarioNamed(t, "authgate-apikey"))
	clk := clocktest.New(time.Unix(1_800_000_000, 0))
	lc := ratelimit.NewLocal(ratelimit.LocalOptions{Now: clk.Now})
	rows := ratelimit.Limit{Requests: cfg.RateLimits.APIKey.Requests, Per: cfg.RateLimits.APIKey.Per}
	for i := range 200_000 {
		res, err := lc.Allow(t.Context(), "key:bench", rows)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed {
			t.Fatalf("request %d refused under %s", i+1, rows)
		}
	}

	def := config.Default().RateLimits.APIKey
	old := ratelimit.Limit{Requests: def.Requests, Per: def.Per}
	refusedAt := 0
	for i := range 200 {
		res, err := lc.Allow(t.Context(), "key:default", old)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed {
			refusedAt = i + 1
			break
		}
	}
	if refusedAt != def.Requests+1 {
		t.Errorf("default %s: first refusal at request %d, want %d", old, refusedAt, def.Requests+1)
	}
}

// TestLocalRowsLimitHeaders builds the local-limit rows' gateway in process and checks
// that their requests are counted under the bench limit: 200, X-RateLimit-Limit 1e9 and
// the policy of the credential's method.
func TestLocalRowsLimitHeaders(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ row, policy string }{
		{"authgate-apikey", `"api_key";q=1000000000;w=1000`},
		{"authgate-jwt-hs256", `"jwt";q=1000000000;w=1000`},
		{"authgate-jwt-eddsa", `"jwt";q=1000000000;w=1000`},
	}
	for _, tt := range tests {
		t.Run(tt.row, func(t *testing.T) {
			sc, err := scenarioNamed(t, tt.row).withCredential(keys, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			s, _, _ := benchGateway(t, sc, keys)
			for i := range 3 {
				r := httptest.NewRequest(http.MethodGet, sc.path, nil)
				for k, vs := range sc.header {
					r.Header[k] = vs
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, r)
				h := rec.Header()
				if rec.Code != sc.want || h.Get("X-RateLimit-Limit") != "1000000000" || h.Get("RateLimit-Policy") != tt.policy {
					t.Fatalf("request %d: %d, X-RateLimit-Limit %q, RateLimit-Policy %q; want %d, 1000000000, %s",
						i+1, rec.Code, h.Get("X-RateLimit-Limit"), h.Get("RateLimit-Policy"), sc.want, tt.policy)
				}
			}
		})
	}
}

// scenarioNamed returns the row called name.
func scenarioNamed(t *testing.T, name string) scenario {
	t.Helper()
	i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == name })
	if i < 0 {
		t.Fatalf("no scenario %q", name)
	}
	return scenarios[i]
}
