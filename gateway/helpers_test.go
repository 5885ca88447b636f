package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

// waitBound bounds every wait in these tests.
const waitBound = 10 * time.Second

// recorded is what an upstream saw of one request.
type recorded struct {
	Method     string
	RequestURI string // as on the wire
	Host       string
	Header     http.Header
}

// upstream is a real HTTP server that records every request it receives, so a test can
// assert what was forwarded and that a refused request never arrived.
type upstream struct {
	name    string
	srv     *httptest.Server
	handler http.HandlerFunc // nil: 200 "upstream <name>"

	mu   sync.Mutex
	reqs []recorded
}

func startUpstream(t *testing.T, name string, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{name: name, handler: h}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
		u.mu.Unlock()
		if u.handler != nil {
			u.handler(w, r)
			return
		}
		fmt.Fprintf(w, "upstream %s", u.name)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reqs = nil
}

// env resolves ${UP_<name>} to the upstreams' URLs, then extra.
func env(ups map[string]*upstream, extra map[string]string) func(string) string {
	return func(k string) string {
		if name, ok := strings.CutPrefix(k, "UP_"); ok {
			if u := ups[name]; u != nil {
				return u.srv.URL
			}
		}
		return extra[k]
	}
}

// harness is one gateway in process with its upstreams and metrics registry.
type harness struct {
	t   *testing.T
	s   *gateway.Server
	reg *prometheus.Registry
	ups map[string]*upstream
}

// gatewayHeader is prepended to every test config: listeners that never collide, and the
// ops listener apart from the main one as validation requires.
const gatewayHeader = `listen: "127.0.0.1:0"
ops_listen: "localhost:0"
`

// newGateway starts an upstream per name and builds a gateway whose config is the header,
// an upstreams block for those names (timeout 5s), and body.
func newGateway(t *testing.T, body string, names ...string) *harness {
	t.Helper()
	ups := map[string]*upstream{}
	var b strings.Builder
	b.WriteString(gatewayHeader)
	if len(names) > 0 {
		b.WriteString("upstreams:\n")
	}
	for _, n := range names {
		ups[n] = startUpstream(t, n, nil)
		fmt.Fprintf(&b, "  %s: {url: \"${UP_%s}\", timeout: 5s}\n", n, n)
	}
	b.WriteString(body)
	return newGatewayYAML(t, b.String(), ups, env(ups, nil), "")
}

// newGatewayYAML builds a gateway from a whole config text.
func newGatewayYAML(t *testing.T, yaml string, ups map[string]*upstream, getenv func(string) string, configPath string) *harness {
	t.Helper()
	return newGatewayOpts(t, yaml, ups, getenv, gateway.Options{ConfigPath: configPath})
}

// newGatewayOpts is newGatewayYAML with more of gateway.Options (the logger, registry and
// getenv are filled in).
func newGatewayOpts(t *testing.T, yaml string, ups map[string]*upstream, getenv func(string) string, o gateway.Options) *harness {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), getenv)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	reg := prometheus.NewRegistry()
	o.Logger, o.Registry, o.Getenv = slog.New(slog.DiscardHandler), reg, getenv
	s, err := gateway.New(cfg, o)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return &harness{t: t, s: s, reg: reg, ups: ups}
}

// answer is a response from either a recorder or the network.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// serve sends r through the gateway in process.
func (h *harness) serve(r *http.Request) answer {
	rec := httptest.NewRecorder()
	h.s.ServeHTTP(rec, r)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// do sends method target through the gateway in process, from remote (ip:port; "" =
// httptest default 192.0.2.1), with headers given as "Name: value" pairs.
func (h *harness) do(method, target, remote string, headers ...string) answer {
	h.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ": ")
		if !ok {
			h.t.Fatalf("bad header %q", kv)
		}
		r.Header.Add(k, v)
	}
	return h.serve(r)
}

// listen serves the gateway on a loopback httptest server (main listener only).
func (h *harness) listen() string {
	srv := httptest.NewServer(h.s)
	h.t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawRequest writes req to addr byte for byte, so no client cleans the path, the method
// or the header names, and reads the one response.
func rawRequest(t *testing.T, addr, req string) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// requestText is an HTTP/1.1 request with Connection: close.
func requestText(method, target, host string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// assertRejected checks a gateway error answer: status, JSON content type, exactly the
// fields error, message and request_id, the code, and request_id equal to X-Request-Id.
func assertRejected(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Errorf("status = %d, want %d (body %s)", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", a.body, err)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "error,message,request_id" {
		t.Errorf("body fields = %s, want error,message,request_id", got)
	}
	if body["error"] != code {
		t.Errorf("error = %v, want %q (message %v)", body["error"], code, body["message"])
	}
	if msg, _ := body["message"].(string); msg == "" {
		t.Errorf("message is empty")
	}
	rid, _ := body["request_id"].(string)
	if rid == "" || rid != a.header.Get("X-Request-Id") {
		t.Errorf("request_id = %q, X-Request-Id = %q; want equal and non-empty", rid, a.header.Get("X-Request-Id"))
	}
}

// assertNoRequests fails if any of the upstreams saw a request.
func assertNoRequests(t *testing.T, ups ...*upstream) {
	t.Helper()
	for _, u := range ups {
		if n := u.count(); n != 0 {
			t.Errorf("upstream %s saw %d requests, want 0: %+v", u.name, n, u.requests())
		}
	}
}

// metricValue is the value of the counter or gauge name with exactly labels, or the sample
// count of a histogram; 0 when the series does not exist.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			match := true
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					match = false
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// writeFile replaces path's content in one step, as a config deploy would.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or waitBound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// httpGet fetches url with a bounded client.
func httpGet(t *testing.T, url string) (answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, err
}
