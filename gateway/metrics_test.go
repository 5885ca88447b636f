package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

const metricsConfig = `
routes:
  - {name: public-weak,  match: ["GET /public/"], upstream: api, public: true}
  - {name: admin-strict, match: ["GET /admin/"],  upstream: api}
`

func TestRequestMetrics(t *testing.T) {
	h := newGateway(t, metricsConfig, "api")
	h.do("GET", "http://gw.example/public/a", "")
	h.do("GET", "http://gw.example/public/b", "")
	h.do("GET", "http://gw.example/nope/secret-path-123", "")
	h.do("GET", "http://gw.example/admin/users/42", "")
	h.do("GET", "http://gw.example/admin/users/43", "", "X-API-Key: sk_live_abc")
	h.do("BREW", "http://gw.example/public/a", "")

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"authgate_requests_total", map[string]string{"route": "public-weak", "method": "GET", "code": "200", "auth": "none"}, 2},
		{"authgate_requests_total", map[string]string{"route": "none", "method": "GET", "code": "404", "auth": "none"}, 1},
		{"authgate_requests_total", map[string]string{"route": "admin-strict", "method": "GET", "code": "401", "auth": "none"}, 1},
		{"authgate_requests_total", map[string]string{"route": "admin-strict", "method": "GET", "code": "401", "auth": "api_key"}, 1},
		{"authgate_requests_total", map[string]string{"route": "none", "method": "OTHER", "code": "405", "auth": "none"}, 1},
		{"authgate_rejected_requests_total", map[string]string{"reason": "no_route", "route": "none", "auth": "none"}, 1},
		{"authgate_rejected_requests_total", map[string]string{"reason": "missing_credentials", "route": "admin-strict", "auth": "none"}, 1},
		{"authgate_rejected_requests_total", map[string]string{"reason": "invalid_api_key", "route": "admin-strict", "auth": "api_key"}, 1},
		{"authgate_rejected_requests_total", map[string]string{"reason": "method_not_allowed", "route": "none", "auth": "none"}, 1},
		{"authgate_request_duration_seconds", map[string]string{"route": "public-weak"}, 2},
		{"authgate_request_duration_seconds", map[string]string{"route": "none"}, 2},
		{"authgate_upstream_duration_seconds", map[string]string{"upstream": "api"}, 2},
	}
	for _, tt := range tests {
		if got := metricValue(t, h.reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "", "route": "public-weak", "auth": "none"}); got != 0 {
		t.Errorf("forwarded requests counted as rejected: %v", got)
	}

	// Labels are bounded: route names from config, never paths, key ids or credentials.
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{"public-weak": true, "admin-strict": true, "none": true, "authgate": true}
	seen := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "authgate_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				seen++
				v := lp.GetValue()
				if lp.GetName() == "route" && !routes[v] {
					t.Errorf("%s has route label %q, not a route name", mf.GetName(), v)
				}
				if strings.Contains(v, "/") || strings.Contains(v, "secret-path") || strings.Contains(v, "sk_live") {
					t.Errorf("%s has label %s=%q, which looks like a path or credential", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no authgate_ labels gathered")
	}
}

// TestOpsListener runs both real listeners: /metrics, /healthz and /readyz answer on the
// ops listener only, and /readyz turns 503 while draining.
func TestOpsListener(t *testing.T) {
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	cfg, err := config.Parse("test.yaml", []byte(gatewayHeader+`
server: {drain_delay: 1s, shutdown_timeout: 5s}
upstreams:
  api: {url: "${UP_api}"}
`+metricsConfig), env(ups, nil))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	stopped := false
	stop := func() error {
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		select {
		case err := <-errc:
			return err
		case <-time.After(waitBound):
			t.Fatal("Serve did not return after shutdown")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })

	main := "http://" + s.Addr().String()
	ops := "http://" + s.OpsAddr().String()

	if a, err := httpGet(t, main+"/public/x"); err != nil || a.status != 200 {
		t.Fatalf("main /public/x = %+v, %v; want 200", a.status, err)
	}
	a, err := httpGet(t, ops+"/metrics")
	if err != nil || a.status != 200 {
		t.Fatalf("ops /metrics = %d, %v; want 200", a.status, err)
	}
	if !strings.Contains(string(a.body), `authgate_requests_total{auth="none",code="200",method="GET",route="public-weak"} 1`) {
		t.Errorf("ops /metrics lacks the request counter:\n%s", a.body)
	}
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		a, err := httpGet(t, ops+path)
		if err != nil || a.status != 200 || !strings.Contains(string(a.body), want) {
			t.Errorf("ops %s = %d %s, %v; want 200 %s", path, a.status, a.body, err, want)
		}
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		a, err := httpGet(t, main+path)
		if err != nil {
			t.Fatalf("main %s: %v", path, err)
		}
		assertRejected(t, a, 404, "no_route")
		if strings.Contains(string(a.body), "authgate_") {
			t.Errorf("main %s leaks metrics", path)
		}
	}
	if n := ups["api"].count(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}

	// Shutdown: /readyz turns 503 during the drain delay, then Serve returns nil.
	cancel()
	eventually(t, "/readyz to report draining", func() bool {
		a, err := httpGet(t, ops+"/readyz")
		return err == nil && a.status == http.StatusServiceUnavailable
	})
	if err := stop(); err != nil {
		t.Errorf("Serve returned %v after shutdown, want nil", err)
	}
}
