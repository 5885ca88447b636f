package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
)

// BenchmarkPipeline measures the gateway's own work per request, in process: everything
// from request id to the proxy's round trip to a loopback upstream. Compare allocs/op
// between changes; the cross-process ratio against a bare proxy is `make bench`.
func BenchmarkPipeline(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	key, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		b.Fatal(err)
	}
	yaml := strings.ReplaceAll(`
log: {access_log: false}
bootstrap: {admin_key: "`+key+`"}
rate_limits: {mode: local, api_key: {requests: 1000000000, per: 1000s}}
upstreams: {api: {url: "UP"}}
routes:
  - {name: open, match: ["GET /open/{$}"], upstream: api, public: true}
  - {name: closed, match: ["GET /closed/{$}"], upstream: api, scopes: ["reports:read"]}
`, "UP", up.URL)
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, path, key string
		want            int
	}{
		{"public-forwarded", "/open/", "", http.StatusOK},
		{"apikey-forwarded", "/closed/", key, http.StatusOK},
		{"protected-401", "/closed/", "", http.StatusUnauthorized},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					r := httptest.NewRequest("GET", "http://gw.example"+bc.path, nil)
					if bc.key != "" {
						r.Header.Set("X-API-Key", bc.key)
					}
					s.ServeHTTP(rec, r)
					if rec.Code != bc.want {
						b.Errorf("status = %d, want %d", rec.Code, bc.want)
						return
					}
				}
			})
		})
	}
}
