package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/porttest"
)

func TestUpstreamDown(t *testing.T) {
	dead := porttest.Reserve(t) // nothing listens there, and nothing can start to
	down := dead.URL()

	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  down: {url: "${DOWN}", timeout: 5s}
routes:
  - {name: gone, match: ["GET /gone/"], upstream: down, public: true}
`, nil, func(k string) string {
		if k == "DOWN" {
			return down
		}
		return ""
	}, "")
	a := rawRequest(t, h.listen(), requestText("GET", "/gone/x", "gw.example"))
	assertRejected(t, a, http.StatusBadGateway, "upstream_error")
	if strings.Contains(string(a.body), dead.Addr()) {
		t.Errorf("body %s names the upstream address", a.body)
	}
	if v := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "upstream_error", "route": "gone", "auth": "none"}); v != 1 {
		t.Errorf("rejected{upstream_error} = %v, want 1", v)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select { // hold the request until the gateway gives up on it, or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before slow.srv.Close, which waits for handlers
	fast := startUpstream(t, "fast", nil)
	ups := map[string]*upstream{"slow": slow, "fast": fast}
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  slow: {url: "${UP_slow}", timeout: 200ms}
  fast: {url: "${UP_fast}", timeout: 200ms}
routes:
  - {name: slow, match: ["GET /slow/"], upstream: slow, public: true}
  - {name: fast, match: ["GET /fast/"], upstream: fast, public: true}
`, ups, env(ups, nil), "")
	addr := h.listen()

	a := rawRequest(t, addr, requestText("GET", "/slow/x", "gw.example"))
	assertRejected(t, a, http.StatusGatewayTimeout, "upstream_timeout")
	if slow.count() != 1 {
		t.Errorf("slow upstream saw %d requests, want 1", slow.count())
	}
	if v := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "upstream_timeout", "route": "slow", "auth": "none"}); v != 1 {
		t.Errorf("rejected{upstream_timeout} = %v, want 1", v)
	}
	// The timeout is per upstream exchange, not a broken gateway: the next request works.
	if a := rawRequest(t, addr, requestText("GET", "/fast/x", "gw.example")); a.status != http.StatusOK {
		t.Errorf("fast route after a timeout = %d, want 200", a.status)
	}
}
