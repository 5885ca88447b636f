package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/porttest"
)

// deadURL is the URL of a reserved loopback port nothing listens on: connecting to it is
// refused, and no parallel test can start a server there (porttest.Reserve).
func deadURL(t *testing.T) string { return porttest.Reserve(t).URL() }

// revive serves on the reserved port dead from now on and counts the requests it
// answers. The port was never free in between, so nothing else can have taken it.
func revive(t *testing.T, dead *porttest.Port) *atomic.Int64 {
	t.Helper()
	ln := dead.Listen()
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "revived")
	}), ReadHeaderTimeout: waitBound}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &hits
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// targetCount is authgate_upstream_requests_total for one target and outcome.
func (h *harness) targetCount(upstream, rawURL, outcome string) float64 {
	h.t.Helper()
	return metricValue(h.t, h.reg, "authgate_upstream_requests_total",
		map[string]string{"upstream": upstream, "target": hostOf(h.t, rawURL), "outcome": outcome})
}

// targetHealthy is authgate_upstream_target_healthy for one target.
func (h *harness) targetHealthy(upstream, rawURL string) float64 {
	h.t.Helper()
	return metricValue(h.t, h.reg, "authgate_upstream_target_healthy",
		map[string]string{"upstream": upstream, "target": hostOf(h.t, rawURL)})
}

// TestUpstreamRoundRobin: three targets take turns, each counted in its own series.
func TestUpstreamRoundRobin(t *testing.T) {
	ups := map[string]*upstream{"a": startUpstream(t, "a", nil), "b": startUpstream(t, "b", nil), "c": startUpstream(t, "c", nil)}
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${UP_a}", "${UP_b}", "${UP_c}"], timeout: 5s}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, ups, env(ups, nil), "")
	for i := range 30 {
		if a := h.do("GET", fmt.Sprintf("/r/%d", i), ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		if got := ups[n].count(); got != 10 {
			t.Errorf("target %s saw %d of 30 requests, want 10", n, got)
		}
		if got := h.targetCount("api", ups[n].srv.URL, "success"); got != 10 {
			t.Errorf("requests_total{target=%s,outcome=success} = %v, want 10", n, got)
		}
		if got := h.targetHealthy("api", ups[n].srv.URL); got != 1 {
			t.Errorf("target_healthy{%s} = %v, want 1", n, got)
		}
	}
}

// TestUpstreamEjectsDeadTargetAndTakesItBack: a target whose connections are refused is
// out of rotation after its first failure (max_failures 1), and is tried again, and used,
// once eject_for has passed.
func TestUpstreamEjectsDeadTargetAndTakesItBack(t *testing.T) {
	ups := map[string]*upstream{"a": startUpstream(t, "a", nil), "c": startUpstream(t, "c", nil)}
	deadPort := porttest.Reserve(t)
	dead := deadPort.URL()
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api:
    targets: ["${UP_a}", "${DEAD}", "${UP_c}"]
    timeout: 5s
    health: {max_failures: 1, eject_for: 300ms}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, ups, env(ups, map[string]string{"DEAD": dead}), "")
	for i := range 12 {
		if a := h.do("GET", "/x", ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s (a GET is retried on another target)", i, a.status, a.body)
		}
	}
	if got := h.targetCount("api", dead, "connect_error"); got != 1 {
		t.Errorf("connect_error on the dead target = %v, want 1: ejected after one failure", got)
	}
	if got := ups["a"].count() + ups["c"].count(); got != 12 {
		t.Errorf("live targets saw %d requests, want 12", got)
	}
	if got := h.targetHealthy("api", dead); got != 0 {
		t.Errorf("target_healthy{dead} = %v, want 0", got)
	}

	// It comes back: after eject_for the next requests find it again.
	hits := revive(t, deadPort)
	eventually(t, "the revived target to be used again", func() bool {
		if a := h.do("GET", "/x", ""); a.status != http.StatusOK {
			t.Fatalf("request after revival: %d %s", a.status, a.body)
		}
		return hits.Load() > 0
	})
	if got := h.targetHealthy("api", dead); got != 1 {
		t.Errorf("target_healthy{revived} = %v, want 1", got)
	}
	if got := h.targetCount("api", dead, "success"); got < 1 {
		t.Errorf("success on the revived target = %v, want >= 1", got)
	}
}

// TestUpstreamRetriesGETOnce: a GET whose target refuses the connection is sent once to
// another target, and the client sees that target's answer.
func TestUpstreamRetriesGETOnce(t *testing.T) {
	for _, method := range []string{"GET", "HEAD", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			ups := map[string]*upstream{"live": startUpstream(t, "live", nil)}
			dead := deadURL(t)
			// The first request of a new gateway goes to the first target: the dead one.
			h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${DEAD}", "${UP_live}"], timeout: 5s}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, ups, env(ups, map[string]string{"DEAD": dead}), "")
			a := h.do(method, "/items/1", "")
			if a.status != http.StatusOK {
				t.Fatalf("%s = %d %s, want 200 from the second target", method, a.status, a.body)
			}
			if got := ups["live"].count(); got != 1 {
				t.Errorf("live target saw %d requests, want 1", got)
			}
			if got := h.targetCount("api", dead, "connect_error"); got != 1 {
				t.Errorf("connect_error{dead} = %v, want 1 (tried first)", got)
			}
		})
	}
}

// TestUpstreamRetryIsOnce: when the second target refuses too, the answer is 502
// upstream_error; no third attempt is made.
func TestUpstreamRetryIsOnce(t *testing.T) {
	d1, d2, d3 := deadURL(t), deadURL(t), deadURL(t)
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${D1}", "${D2}", "${D3}"], timeout: 5s, health: {eject_for: 1h}}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, nil, env(nil, map[string]string{"D1": d1, "D2": d2, "D3": d3}), "")
	assertRejected(t, rawRequest(t, h.listen(), requestText("GET", "/x", "gw.example")), http.StatusBadGateway, "upstream_error")
	attempts := h.targetCount("api", d1, "connect_error") + h.targetCount("api", d2, "connect_error") + h.targetCount("api", d3, "connect_error")
	if attempts != 2 {
		t.Errorf("connection attempts = %v, want 2 (the first and one retry)", attempts)
	}
}

// TestUpstreamNoRetryForPOST: a POST whose target refuses the connection is answered 502
// upstream_error and not sent anywhere else, with a body or without; the next POST goes
// to the target left in rotation, which receives its body once.
func TestUpstreamNoRetryForPOST(t *testing.T) {
	for _, first := range []string{"order-1", ""} {
		t.Run(fmt.Sprintf("body=%q", first), func(t *testing.T) {
			var bodies []string
			var mu sync.Mutex
			ups := map[string]*upstream{"live": startUpstream(t, "live", func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, string(b))
				mu.Unlock()
			})}
			dead := deadURL(t)
			h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${DEAD}", "${UP_live}"], timeout: 5s}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, ups, env(ups, map[string]string{"DEAD": dead}), "")
			addr := h.listen()
			post := func(body string) answer {
				return rawRequest(t, addr, requestText("POST", "/orders", "gw.example",
					"Content-Type: text/plain", fmt.Sprintf("Content-Length: %d", len(body)))+body)
			}
			assertRejected(t, post(first), http.StatusBadGateway, "upstream_error")
			assertNoRequests(t, ups["live"])
			if got := h.targetCount("api", dead, "connect_error"); got != 1 {
				t.Errorf("connect_error{dead} = %v, want 1", got)
			}
			if v := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "upstream_error", "route": "all", "auth": "none"}); v != 1 {
				t.Errorf("rejected{upstream_error} = %v, want 1", v)
			}
			if a := post("order-2"); a.status != http.StatusOK {
				t.Fatalf("second POST = %d %s, want 200 from the target in rotation", a.status, a.body)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(bodies, ",") != "order-2" {
				t.Errorf("live target received bodies %q, want exactly [order-2]", bodies)
			}
		})
	}
}

// TestUpstreamAllTargetsEjected: with every target ejected the gateway does not wait for
// one to come back: each request tries the target whose ejection ends first and answers
// 502 upstream_error when it is still down, and uses it as soon as it is back, long
// before its eject_for (1h) has passed.
func TestUpstreamAllTargetsEjected(t *testing.T) {
	d1Port := porttest.Reserve(t)
	d1, d2 := d1Port.URL(), deadURL(t)
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${D1}", "${D2}"], timeout: 5s, health: {eject_for: 1h}}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, nil, env(nil, map[string]string{"D1": d1, "D2": d2}), "")
	addr := h.listen()
	for range 3 {
		assertRejected(t, rawRequest(t, addr, requestText("GET", "/x", "gw.example")), http.StatusBadGateway, "upstream_error")
	}
	if h.targetHealthy("api", d1) != 0 || h.targetHealthy("api", d2) != 0 {
		t.Fatalf("both targets should be ejected: healthy d1=%v d2=%v", h.targetHealthy("api", d1), h.targetHealthy("api", d2))
	}
	hits := revive(t, d1Port)
	ok := 0
	for range 4 { // the two ejected targets are tried in turn: d1 within two requests
		if a := rawRequest(t, addr, requestText("GET", "/x", "gw.example")); a.status == http.StatusOK {
			ok++
		} else {
			assertRejected(t, a, http.StatusBadGateway, "upstream_error")
		}
	}
	if ok == 0 || hits.Load() == 0 {
		t.Fatalf("the revived target was not used while every target was ejected (ok answers %d, hits %d)", ok, hits.Load())
	}
	if got := h.targetHealthy("api", d1); got != 1 {
		t.Errorf("target_healthy{revived} = %v, want 1 after a success", got)
	}
}

// TestUpstreamLeastRequests: with balance least_requests a target holding a slow request
// gets no new one while another target is idle.
func TestUpstreamLeastRequests(t *testing.T) {
	release := make(chan struct{})
	ups := map[string]*upstream{
		"slow": startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		}),
		"fast": startUpstream(t, "fast", nil),
	}
	t.Cleanup(func() { close(release) }) // before the servers close
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {targets: ["${UP_slow}", "${UP_fast}"], timeout: 5s, balance: least_requests}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, ups, env(ups, nil), "")
	// Hold one request at the slow target (one that lands on the fast one just returns).
	held := make(chan answer, 10)
	for ups["slow"].count() == 0 {
		done := make(chan struct{})
		go func() { held <- h.do("GET", "/hold", ""); close(done) }()
		deadline := time.After(waitBound)
		for ups["slow"].count() == 0 {
			select {
			case <-done:
			case <-deadline:
				t.Fatal("no request reached either target")
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
	fastBefore := ups["fast"].count()
	for i := range 6 {
		if a := h.do("GET", "/quick", ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if got := ups["fast"].count() - fastBefore; got != 6 {
		t.Errorf("idle target got %d of 6 requests while the other held one, want 6", got)
	}
	if got := ups["slow"].count(); got != 1 {
		t.Errorf("busy target saw %d requests, want only the held one", got)
	}
}

// TestRouteStripPrefix: strip_prefix forwards the path without the prefix (and names it
// in X-Forwarded-Prefix), while routing and scopes are decided on the whole cleaned path,
// so no path trick reaches a stricter route's resources through a weaker one.
func TestRouteStripPrefix(t *testing.T) {
	admin, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	h := newGateway(t, `
bootstrap: {admin_key: "`+admin+`"}
routes:
  - {name: billing, match: ["GET /billing/{rest...}"], upstream: api, scopes: ["billing:read"], strip_prefix: /billing}
  - {name: billing-admin, match: ["GET /billing/admin/{rest...}"], upstream: api, scopes: ["billing:admin"], strip_prefix: /billing}
  - {name: admin, match: ["GET /admin/{rest...}"], upstream: api, scopes: ["admin:all"]}
`, "api")
	api := h.ups["api"]
	reader := mintKey(t, h, admin, "billing:read")

	for _, tc := range []struct{ path, forwarded string }{
		{"/billing/invoices/7?x=1", "/invoices/7?x=1"},
		{"/billing/", "/"},
		{"/billing/a/./b//c", "/a/b/c"},
		{"/billing/%69nvoices", "/invoices"},
	} {
		api.reset()
		a := h.do("GET", tc.path, "", "X-API-Key: "+reader)
		if a.status != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", tc.path, a.status, a.body)
			continue
		}
		reqs := api.requests()
		if len(reqs) != 1 || reqs[0].RequestURI != tc.forwarded {
			t.Errorf("GET %s reached the upstream as %+v, want %s", tc.path, reqs, tc.forwarded)
			continue
		}
		if got := reqs[0].Header.Get("X-Forwarded-Prefix"); got != "/billing" {
			t.Errorf("X-Forwarded-Prefix = %q, want /billing", got)
		}
	}
	// The stricter route is decided on the original path: /billing/admin/... needs
	// billing:admin, though the upstream would see /admin/....
	api.reset()
	for _, path := range []string{"/billing/admin/users", "/billing/x/../admin/users", "/billing/./admin/users"} {
		assertRejected(t, h.do("GET", path, "", "X-API-Key: "+reader), http.StatusForbidden, "insufficient_scope")
	}
	// Dot segments cannot climb out of the prefix into another route.
	assertRejected(t, h.do("GET", "/billing/../admin/users", "", "X-API-Key: "+reader), http.StatusForbidden, "insufficient_scope")
	assertNoRequests(t, api)
	// A client's own X-Forwarded-Prefix never reaches the upstream.
	if a := h.do("GET", "/billing/x", "", "X-API-Key: "+reader, "X-Forwarded-Prefix: /evil"); a.status != http.StatusOK {
		t.Fatalf("GET /billing/x = %d", a.status)
	}
	if got := api.requests()[0].Header.Values("X-Forwarded-Prefix"); len(got) != 1 || got[0] != "/billing" {
		t.Errorf("X-Forwarded-Prefix = %q, want only /billing", got)
	}
}

// TestUpstreamTargetsWithTestURL: on an upstream with several targets and a test_url,
// test keys go to test_url only and live keys to the targets only.
func TestUpstreamTargetsWithTestURL(t *testing.T) {
	admin, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	ups := map[string]*upstream{"a": startUpstream(t, "a", nil), "b": startUpstream(t, "b", nil), "sandbox": startUpstream(t, "sandbox", nil)}
	h := newGatewayYAML(t, gatewayHeader+`
bootstrap: {admin_key: "`+admin+`"}
upstreams:
  api: {targets: ["${UP_a}", "${UP_b}"], test_url: "${UP_sandbox}", timeout: 5s}
routes:
  - {name: r, match: ["GET /r/"], upstream: api, scopes: ["r:read"]}
`, ups, env(ups, nil), "")
	live := mintKeyEnv(t, h, admin, "live", "r:read")
	test := mintKeyEnv(t, h, admin, "test", "r:read")
	for range 4 {
		if a := h.do("GET", "/r/x", "", "X-API-Key: "+test); a.status != http.StatusOK {
			t.Fatalf("test key: %d %s", a.status, a.body)
		}
	}
	if ups["sandbox"].count() != 4 {
		t.Errorf("test_url saw %d of 4 test-key requests", ups["sandbox"].count())
	}
	assertNoRequests(t, ups["a"], ups["b"])
	ups["sandbox"].reset()
	for range 4 {
		if a := h.do("GET", "/r/x", "", "X-API-Key: "+live); a.status != http.StatusOK {
			t.Fatalf("live key: %d %s", a.status, a.body)
		}
	}
	if ups["a"].count() != 2 || ups["b"].count() != 2 {
		t.Errorf("live targets saw %d and %d of 4, want 2 and 2", ups["a"].count(), ups["b"].count())
	}
	assertNoRequests(t, ups["sandbox"])
}

// mintKey creates an API key with scopes through the management API with the admin key.
func mintKey(t *testing.T, h *harness, admin string, scopes ...string) string {
	t.Helper()
	return mintKeyEnv(t, h, admin, "live", scopes...)
}

// mintKeyEnv is mintKey for environment env ("live" or "test").
func mintKeyEnv(t *testing.T, h *harness, admin, env string, scopes ...string) string {
	t.Helper()
	body := `{"name":"k","environment":"` + env + `","scopes":["` + strings.Join(scopes, `","`) + `"]}`
	r, err := http.NewRequest("POST", "http://gw.example/api/auth/api-keys/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-API-Key", admin)
	r.RemoteAddr = "192.0.2.1:1234"
	a := h.serve(r)
	if a.status != http.StatusCreated {
		t.Fatalf("create key %v: %d %s", scopes, a.status, a.body)
	}
	_, rest, _ := strings.Cut(string(a.body), `"key":"`)
	key, _, _ := strings.Cut(rest, `"`)
	if key == "" {
		t.Fatalf("no key in %s", a.body)
	}
	return key
}

// TestUpstreamReloadKeepsHealth: a reload that leaves an upstream's targets alone keeps
// their health (an ejected target stays ejected, and is not tried again), a reload that
// changes them serves the new list, the series of a target no longer configured are
// removed, and no request fails while reloads happen under traffic.
func TestUpstreamReloadKeepsHealth(t *testing.T) {
	ups := map[string]*upstream{"a": startUpstream(t, "a", nil), "b": startUpstream(t, "b", nil), "c": startUpstream(t, "c", nil)}
	dead := deadURL(t)
	extra := map[string]string{"DEAD": dead}
	conf := func(targets, route string) string {
		return gatewayHeader + `
upstreams:
  api: {targets: [` + targets + `], timeout: 5s, health: {eject_for: 1h}}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
` + route
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	v1 := conf(`"${DEAD}", "${UP_a}"`, "")
	writeFile(t, path, v1)
	h := newGatewayYAML(t, v1, ups, env(ups, extra), path)
	if a := h.do("GET", "/x", ""); a.status != http.StatusOK { // dead first, retried on a
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	if h.targetHealthy("api", dead) != 0 {
		t.Fatal("dead target not ejected")
	}

	// Same upstream, another route: the dead target stays ejected.
	writeFile(t, path, conf(`"${DEAD}", "${UP_a}"`, `  - {name: other, match: ["/other/"], upstream: api, public: true}
`))
	if err := h.s.Reload(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if a := h.do("GET", "/x", ""); a.status != http.StatusOK {
			t.Fatalf("after reload: %d %s", a.status, a.body)
		}
	}
	if got := h.targetCount("api", dead, "connect_error"); got != 1 {
		t.Errorf("connect_error{dead} = %v after a reload that kept it, want 1 (still ejected)", got)
	}
	if h.targetHealthy("api", dead) != 0 {
		t.Error("a reload that kept the target put it back into rotation")
	}

	// Under traffic, swap the targets back and forth; nothing fails.
	stop := make(chan struct{})
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if a := h.do("GET", "/x", ""); a.status != http.StatusOK {
					failures.Add(1)
				}
			}
		}()
	}
	for i := range 10 {
		lists := []string{`"${UP_a}", "${UP_b}"`, `"${UP_b}", "${UP_c}"`}
		writeFile(t, path, conf(lists[i%2], ""))
		if err := h.s.Reload(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // let traffic run on each configuration
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d requests failed during reloads", n)
	}
	// The last list is b and c: a's and the dead target's series are gone.
	for _, gone := range []string{ups["a"].srv.URL, dead} {
		if n := metricSeries(t, h, "authgate_upstream_target_healthy", hostOf(t, gone)); n != 0 {
			t.Errorf("%s still has %d target_healthy series", gone, n)
		}
	}
	ups["b"].reset()
	ups["c"].reset()
	for range 4 {
		h.do("GET", "/x", "")
	}
	if ups["b"].count() != 2 || ups["c"].count() != 2 {
		t.Errorf("after the last reload b saw %d, c %d of 4, want 2 and 2", ups["b"].count(), ups["c"].count())
	}
}

// metricSeries counts the series of name whose target label is target.
func metricSeries(t *testing.T, h *harness, name, target string) int {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					n++
				}
			}
		}
	}
	return n
}
