package gateway_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

// A forward-auth check is counted and logged as the request it decided: its route
// ("none" when no route matches, as for any request), its method and path; the check's
// own path is the access log's authz_path.
func TestForwardAuthObservedAsDecided(t *testing.T) {
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	getenv := env(ups, nil)
	cfg, err := config.Parse("test.yaml", []byte(gatewayHeader+"upstreams:\n  api: {url: \"${UP_api}\", timeout: 5s}\n"+forwardAuthConfig), getenv)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registry: reg, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, reg: reg, ups: ups}
	ask := func(method, uri string) answer {
		return h.do("GET", "/authz", "10.1.2.3:4567", "X-Forwarded-Method: "+method, "X-Forwarded-Uri: "+uri,
			"X-Forwarded-Host: api.example.com", "X-Forwarded-For: 198.51.100.7")
	}
	assertRejected(t, ask("GET", "/nowhere"), http.StatusNotFound, "no_route")
	assertRejected(t, ask("POST", "/api/v1/reports/generate/?x=1"), http.StatusUnauthorized, "missing_credentials")
	assertNoRequests(t, ups["api"])

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rejected no_route, route none", map[string]string{"reason": "no_route", "route": "none", "auth": "none"}, 1},
		{"rejected no_route, route authgate", map[string]string{"reason": "no_route", "route": "authgate", "auth": "none"}, 0},
		{"rejected on the decided route", map[string]string{"reason": "missing_credentials", "route": "reports-generate", "auth": "none"}, 1},
	} {
		if got := metricValue(t, reg, "authgate_rejected_requests_total", c.labels); got != c.want {
			t.Errorf("%s: authgate_rejected_requests_total%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := metricValue(t, reg, "authgate_requests_total", map[string]string{"route": "reports-generate", "method": "POST", "code": "401", "auth": "none"}); got != 1 {
		t.Errorf("requests_total of the decided POST = %v, want 1", got)
	}
	if got := metricValue(t, reg, "authgate_requests_total", map[string]string{"route": "none", "method": "GET", "code": "404", "auth": "none"}); got != 1 {
		t.Errorf("requests_total of the decided GET /nowhere = %v, want 1", got)
	}

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	want := []map[string]any{
		{"method": "GET", "path": "/nowhere", "authz_path": "/authz", "route": "", "reason": "no_route", "status": float64(404)},
		{"method": "POST", "path": "/api/v1/reports/generate/", "authz_path": "/authz", "route": "reports-generate", "reason": "missing_credentials", "status": float64(401)},
	}
	if len(lines) != len(want) {
		t.Fatalf("access log has %d request lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}

	// An ordinary request has no authz_path.
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	assertRejected(t, h.do("GET", "/nowhere", ""), http.StatusNotFound, "no_route")
	if strings.Contains(logs.String(), "authz_path") || !strings.Contains(logs.String(), `"path":"/nowhere"`) {
		t.Errorf("a plain request's log line: %s", logs.String())
	}
}
