package gateway_test

// Regression tests of issue 9, item 10: no client holds a connection with headers or a
// body that never come, a refusal is answered before the body is read, and the gateway's
// own endpoints bound the bodies they read.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

// timeoutsConfig has a protected route, a public one whose upstream reads the whole body,
// and the management API.
const timeoutsConfig = `routes:
  - name: reports
    match: ["/api/v1/reports/"]
    upstream: api
    scopes: ["reports:read"]
  - name: upload
    match: ["POST /upload/{$}"]
    upstream: api
    public: true
`

// serveReal runs a gateway built from yaml on its own listeners (the http.Server with the
// configured timeouts, not a test server) until the test ends. It returns the main and
// ops addresses.
func serveReal(t *testing.T, yaml string, ups map[string]*upstream) (mainAddr, opsAddr string) {
	t.Helper()
	return serveRealWith(t, yaml, ups, gateway.Options{})
}

// serveRealWith is serveReal with opts (Logger and Registry are filled in).
func serveRealWith(t *testing.T, yaml string, ups map[string]*upstream, opts gateway.Options) (mainAddr, opsAddr string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), env(ups, nil))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	opts.Logger, opts.Registry = slog.New(slog.DiscardHandler), prometheus.NewRegistry()
	s, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitBound):
			t.Errorf("Serve did not return within %s", waitBound)
		}
	})
	return s.Addr().String(), s.OpsAddr().String()
}

// generous bounds every read of these tests: far above any timeout they configure, so
// only a connection the gateway never answers or never closes reaches it.
const generous = 5 * time.Second

// readUntilClosed reads conn until the gateway closes it. It fails the test when the
// connection is still open after generous.
func readUntilClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(generous))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s; read so far: %q", generous, got)
	}
	return string(got)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestReview10_RefusalBeforeUnsentBody: a request announcing a body (Content-Length: 1000,
// or chunked) that never comes gets its 401 at once, with Connection: close, and the
// connection is then closed; the upstream sees nothing.
func TestReview10_RefusalBeforeUnsentBody(t *testing.T) {
	api := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": api}
	addr, _ := serveReal(t, gatewayHeader+"upstreams: {api: {url: \"${UP_api}\", timeout: 5s}}\n"+timeoutsConfig, ups)
	for _, framing := range []string{"Content-Length: 1000", "Transfer-Encoding: chunked"} {
		t.Run(framing, func(t *testing.T) {
			conn := dial(t, addr)
			if _, err := io.WriteString(conn, "POST /api/v1/reports/ HTTP/1.1\r\nHost: gw.example\r\n"+framing+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(generous))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %s: %v", generous, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			assertRejected(t, answer{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusUnauthorized, "missing_credentials")
			if !resp.Close {
				t.Errorf("answer without Connection: close (header %v)", resp.Header)
			}
			if rest, err := br.ReadString(0); err != io.EOF {
				t.Errorf("connection not closed after the answer: read %q, %v", rest, err)
			}
		})
	}
	assertNoRequests(t, api)
}

// TestReview10_SlowHeadersCutOff: a client sending part of its headers and then nothing
// is cut off after server.read_header_timeout, on both listeners, without an answer.
func TestReview10_SlowHeadersCutOff(t *testing.T) {
	api := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": api}
	addr, ops := serveReal(t, gatewayHeader+"server: {read_header_timeout: 200ms}\nupstreams: {api: {url: \"${UP_api}\", timeout: 5s}}\n"+timeoutsConfig, ups)
	for _, a := range []string{addr, ops} {
		conn := dial(t, a)
		if _, err := io.WriteString(conn, "GET /upload/ HTTP/1.1\r\nHost: gw.example\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		if got := readUntilClosed(t, conn); strings.HasPrefix(got, "HTTP/1.1 2") {
			t.Errorf("%s: got %q, want the connection closed without a 2xx", a, got)
		}
	}
	assertNoRequests(t, api)
}

// TestReview10_StalledBodyCutOff: a body that stops arriving is cut off after
// server.body_timeout: the connection is closed, not held.
func TestReview10_StalledBodyCutOff(t *testing.T) {
	api := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	ups := map[string]*upstream{"api": api}
	addr, _ := serveReal(t, gatewayHeader+"server: {body_timeout: 200ms}\nupstreams: {api: {url: \"${UP_api}\", timeout: 30s}}\n"+timeoutsConfig, ups)
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "POST /upload/ HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 1000\r\n\r\nfirst bytes"); err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, conn)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	body, _ := io.ReadAll(resp.Body)
	assertRejected(t, answer{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusRequestTimeout, "request_timeout")
}

// TestReview10_OversizedManagementBody: a management API body over 64 KiB is refused with
// 413 request_too_large and nothing is created.
func TestReview10_OversizedManagementBody(t *testing.T) {
	adminKey := newAdminKey(t)
	h := newGateway(t, timeoutsConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", "api")
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `","scopes":["reports:read"]}`
	r := httpRequest(t, "POST", "/api/auth/api-keys/", big)
	r.Header.Set("X-API-Key", adminKey)
	assertRejected(t, h.serve(r), http.StatusRequestEntityTooLarge, "request_too_large")

	list := httpRequest(t, "GET", "/api/auth/api-keys/", "")
	list.Header.Set("X-API-Key", adminKey)
	a := h.serve(list)
	if a.status != http.StatusOK || strings.Contains(string(a.body), "xxxx") {
		t.Errorf("after the refusal the key list is %d %s, want no new key", a.status, a.body)
	}
	assertNoRequests(t, h.ups["api"])
}

// TestReview10_BodyTimeoutEndsWithTheBody: body_timeout bounds only the wait for body
// bytes. Once the body is read, an upstream slower than body_timeout still answers, and
// a request whose body was read keeps its connection alive.
func TestReview10_BodyTimeoutEndsWithTheBody(t *testing.T) {
	api := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(600 * time.Millisecond) // longer than body_timeout, after the body
		_, _ = w.Write(b)
	})
	ups := map[string]*upstream{"api": api}
	addr, _ := serveReal(t, gatewayHeader+"server: {body_timeout: 200ms}\nupstreams: {api: {url: \"${UP_api}\", timeout: 30s}}\n"+timeoutsConfig, ups)
	conn := dial(t, addr)
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	br := bufio.NewReader(conn)
	for i := range 2 {
		if _, err := io.WriteString(conn, "POST /upload/ HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "hello" || resp.Close {
			t.Fatalf("request %d: %d %q close=%v, want 200 \"hello\" on a kept connection", i, resp.StatusCode, body, resp.Close)
		}
	}
}

// TestReview10_StalledManagementBody: a management API body that stops arriving is cut off
// after server.body_timeout with 408 request_timeout, and the connection is closed.
func TestReview10_StalledManagementBody(t *testing.T) {
	adminKey := newAdminKey(t)
	api := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": api}
	addr, _ := serveReal(t, gatewayHeader+"server: {body_timeout: 200ms}\nupstreams: {api: {url: \"${UP_api}\", timeout: 5s}}\n"+
		timeoutsConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", ups)
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "POST /api/auth/api-keys/ HTTP/1.1\r\nHost: gw.example\r\nX-API-Key: "+adminKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":"); err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, conn)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	body, _ := io.ReadAll(resp.Body)
	assertRejected(t, answer{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusRequestTimeout, "request_timeout")
	assertNoRequests(t, api)
}

// TestReview10_TricklingManagementBodyEnds: a call to the gateway's own API ends when its
// time is up even while its body keeps trickling in, each byte well within
// server.body_timeout. Before the fix the 30-second bound was a context that reading the
// body never looked at: a login or management call sent a byte every few seconds stayed
// open for as long as 64 KiB takes.
func TestReview10_TricklingManagementBodyEnds(t *testing.T) {
	adminKey := newAdminKey(t)
	api := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": api}
	addr, _ := serveRealWith(t, gatewayHeader+"server: {body_timeout: 2s}\nupstreams: {api: {url: \"${UP_api}\", timeout: 5s}}\n"+
		timeoutsConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", ups, gateway.Options{OwnTimeout: 300 * time.Millisecond})
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, "POST /api/auth/api-keys/ HTTP/1.1\r\nHost: gw.example\r\nX-API-Key: "+adminKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"name\":\""); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(50 * time.Millisecond) // far within body_timeout
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "a"); err != nil {
					return
				}
			}
		}
	}()
	got := readUntilClosed(t, conn)
	close(stop)
	<-trickled
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", got, err)
	}
	body, _ := io.ReadAll(resp.Body)
	assertRejected(t, answer{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusRequestTimeout, "request_timeout")
	assertNoRequests(t, api)
}
