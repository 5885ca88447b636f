package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodySeen is what the body-recording upstream read of one request body.
type bodySeen struct {
	path string
	n    int
	err  error
}

// bodyUpstream is an upstream that reads every request body to its end (or error) and
// records how much it got.
type bodyUpstream struct {
	*upstream
	mu   sync.Mutex
	seen []bodySeen
}

// settle waits until every request the upstream received has been read to its end (or
// error), and no new one came for a while: the gateway has closed its side by then.
func (b *bodyUpstream) settle(t *testing.T) []bodySeen {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	quiet := 0
	for quiet < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if b.count() == len(b.bodies()) {
			quiet++
		} else {
			quiet = 0
		}
	}
	return b.bodies()
}

func (b *bodyUpstream) bodies() []bodySeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bodySeen(nil), b.seen...)
}

// bodyLimitGateway: proxy.max_body_bytes 1000; a protected route upload (reports:read),
// public routes open (the default bound), small (100), big (-1: none) and stream (100000).
func bodyLimitGateway(t *testing.T) (*harness, *bodyUpstream) {
	t.Helper()
	bu := &bodyUpstream{}
	bu.upstream = startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		bu.mu.Lock()
		bu.seen = append(bu.seen, bodySeen{r.URL.Path, int(n), err})
		bu.mu.Unlock()
		fmt.Fprintf(w, "read %d", n)
	})
	ups := map[string]*upstream{"api": bu.upstream}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
proxy: {max_body_bytes: 1000}
jwt:
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "` + hmacSecret + `"
      algorithms: ["HS256"]
routes:
  - {name: upload, match: ["POST /upload"], upstream: api, scopes: ["reports:read"]}
  - {name: open, match: ["POST /open"], upstream: api, public: true}
  - {name: small, match: ["POST /small"], upstream: api, public: true, max_body_bytes: 100}
  - {name: big, match: ["POST /big"], upstream: api, public: true, max_body_bytes: -1}
  - {name: stream, match: ["POST /stream"], upstream: api, public: true, max_body_bytes: 100000}
`
	return newGatewayYAML(t, yaml, ups, env(ups, nil), ""), bu
}

func postBody(h *harness, target string, size int, headers ...string) answer {
	h.t.Helper()
	r := httptest.NewRequest("POST", target, bytes.NewReader(make([]byte, size)))
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
	}
	return h.serve(r)
}

// A Content-Length above the route's bound is 413 request_too_large at once: before
// authentication (no credential needed to learn it) and never forwarded. A body at the
// bound is forwarded whole; -1 lifts the bound.
func TestBodyLimitContentLength(t *testing.T) {
	h, bu := bodyLimitGateway(t)
	good := "Authorization: Bearer " + orgToken(t)
	assertRejected(t, postBody(h, "/upload", 1001), http.StatusRequestEntityTooLarge, "request_too_large")
	assertRejected(t, postBody(h, "/upload", 1001, good), http.StatusRequestEntityTooLarge, "request_too_large")
	assertRejected(t, postBody(h, "/open", 1001), http.StatusRequestEntityTooLarge, "request_too_large")
	a := postBody(h, "/small", 101)
	assertRejected(t, a, http.StatusRequestEntityTooLarge, "request_too_large")
	if !strings.Contains(string(a.body), "100 bytes route small accepts") {
		t.Errorf("413 body %s: want it to name the bound and the route", a.body)
	}
	assertNoRequests(t, bu.upstream)
	if got := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "request_too_large", "route": "upload", "auth": "none"}); got != 2 {
		t.Errorf("request_too_large rejections on upload = %v, want 2", got)
	}

	wantStatus(t, "at the bound", postBody(h, "/upload", 1000, good), http.StatusOK)
	wantStatus(t, "small at its bound", postBody(h, "/small", 100), http.StatusOK)
	wantStatus(t, "no bound", postBody(h, "/big", 50000), http.StatusOK)
	want := []bodySeen{{"/upload", 1000, nil}, {"/small", 100, nil}, {"/big", 50000, nil}}
	if got := bu.bodies(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upstream read %v, want %v", got, want)
	}
}

// chunkedPost sends POST target with a chunked body of total bytes in chunks of 8 KiB over
// a raw connection, writing and reading at once (the gateway may answer before the body
// is sent), and returns the answer.
func chunkedPost(t *testing.T, addr, target string, total int) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriter(conn)
		fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", target)
		chunk := bytes.Repeat([]byte("x"), 8<<10)
		for sent := 0; sent < total; sent += len(chunk) {
			c := chunk[:min(len(chunk), total-sent)]
			fmt.Fprintf(w, "%x\r\n%s\r\n", len(c), c)
			if w.Flush() != nil {
				return // the gateway closed the connection: it answered
			}
		}
		fmt.Fprint(w, "0\r\n\r\n")
		_ = w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	conn.Close()
	<-done
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// A chunked body that grows past the bound is cut off: the client gets 413
// request_too_large (not the proxy's 502), and the upstream never gets a whole body: it
// either saw nothing or a body that broke off at most at the bound. A chunked body within
// the bound is forwarded whole.
func TestBodyLimitChunkedCutOff(t *testing.T) {
	h, bu := bodyLimitGateway(t)
	addr := h.listen()

	a := chunkedPost(t, addr, "/stream", 50000)
	wantStatus(t, "chunked within the bound", a, http.StatusOK)
	if got := bu.settle(t); len(got) != 1 || got[0] != (bodySeen{"/stream", 50000, nil}) {
		t.Fatalf("upstream read %v, want one whole body of 50000", got)
	}

	bounds := map[string]int{"/stream": 100000, "/open": 1000}
	for _, tc := range []struct {
		target string
		total  int
	}{{"/stream", 400000}, {"/open", 50000}} {
		a := chunkedPost(t, addr, tc.target, tc.total)
		assertRejected(t, a, http.StatusRequestEntityTooLarge, "request_too_large")
	}
	seen := bu.settle(t)
	for _, s := range seen[1:] {
		if s.err == nil || s.n > bounds[s.path] {
			t.Errorf("upstream read %d bytes of %s (error %v): want a body broken off at most at %d", s.n, s.path, s.err, bounds[s.path])
		}
	}
	for _, s := range seen[1:] {
		t.Logf("the upstream read %d bytes of %s, then: %v", s.n, s.path, s.err)
	}
	if got := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "request_too_large", "route": "open", "auth": "none"}); got != 1 {
		t.Errorf("request_too_large rejections on open = %v, want 1", got)
	}
}
