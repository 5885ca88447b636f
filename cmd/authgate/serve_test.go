package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// upstream is an API behind the gateway that answers "<path> from upstream" and counts
// the requests it saw.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
}

func newUpstream(t *testing.T, h http.Handler) *upstream {
	t.Helper()
	u := &upstream{}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s from upstream", r.URL.Path)
		})
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// gatewayConfig is a file with loopback listeners on ports the kernel picks at bind time
// (startGateway reads them from the "authgate serving" line), one upstream "api", the
// given extra top-level YAML and public routes named after their one GET path each.
func gatewayConfig(t *testing.T, upstreamURL, extra string, routes ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\nops_listen: \"127.0.0.1:0\"\n")
	fmt.Fprintf(&b, "upstreams:\n  api:\n    url: %q\n", upstreamURL)
	b.WriteString(extra)
	b.WriteString("routes:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "  - name: %s\n    match: [\"GET /%s\"]\n    upstream: api\n    public: true\n", r, r)
	}
	return b.String()
}

// TestSIGTERMDrains: on SIGTERM /readyz turns 503, a request in flight finishes with its
// whole body, and the process exits 0 only after it.
func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	var arrivedOnce sync.Once
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseUpstream := func() { releaseOnce.Do(func() { close(release) }) }
	body := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrivedOnce.Do(func() { close(arrived) })
		<-release
		io.WriteString(w, body)
	}))
	t.Cleanup(releaseUpstream) // runs before the upstream's Close, which waits for handlers
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, path, gatewayConfig(t, up.URL, "server:\n  shutdown_timeout: 60s\n", "slow"))
	g := startGateway(t, path)

	if code, b := g.ops("/readyz"); code != http.StatusOK {
		t.Fatalf("before SIGTERM: /readyz got %d %s, want 200", code, b)
	}
	type result struct {
		code int
		body string
	}
	resc := make(chan result, 1)
	go func() {
		code, b := g.get("/slow")
		resc <- result{code, b}
	}()
	select {
	case <-arrived:
	case <-time.After(bound):
		t.Fatal("request did not reach the upstream")
	}

	g.signal(syscall.SIGTERM)
	eventually(t, "/readyz answers 503 after SIGTERM", func() bool {
		code, _ := g.ops("/readyz")
		return code == http.StatusServiceUnavailable || code == 0 // 0: ops listener already closed
	})
	select {
	case <-g.done:
		t.Fatalf("authgate exited (code %d) with a request in flight", g.exitCode)
	default:
	}

	releaseUpstream()
	res := <-resc
	if res.code != http.StatusOK || res.body != body {
		t.Errorf("in-flight request: got %d with %d bytes, want 200 with %d bytes", res.code, len(res.body), len(body))
	}
	if code := g.wait(); code != 0 {
		t.Errorf("got exit code %d, want 0", code)
	}
	if g.logLine("draining") == nil || g.logLine("stopped") == nil {
		t.Error("want \"draining\" and \"stopped\" log lines")
	}
}

// selfSignedCert writes an ECDSA P-256 certificate for 127.0.0.1 and its key.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "authgate test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeConfig(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeConfig(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	return certFile, keyFile, cert
}

func TestTLS(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	dir := t.TempDir()
	certFile, keyFile, cert := selfSignedCert(t, dir)
	path := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, path, gatewayConfig(t, up.URL, fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile), "health"))
	g := startGateway(t, path)
	if g.scheme != "https" {
		t.Errorf("serving log line: got scheme %q, want https", g.scheme)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	t.Run("HTTP/2 over TLS 1.2+", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: bound}).Get("https://" + g.mainAddr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != "/health from upstream" {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, b, "/health from upstream")
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("got protocol %s, want HTTP/2", resp.Proto)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("got TLS state %+v, want version >= TLS 1.2", resp.TLS)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		tests := []struct {
			name    string
			max     uint16
			wantErr string // "" = handshake succeeds
		}{
			{"TLS 1.1", tls.VersionTLS11, "protocol version"},
			{"TLS 1.2", tls.VersionTLS12, ""}, // control: the same client, allowed 1.2, gets in
		}
		for _, tt := range tests {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", g.mainAddr,
				&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tt.max})
			if err == nil {
				conn.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%s: got %v, want a handshake", tt.name, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		}
	})

	t.Run("plain HTTP refused", func(t *testing.T) {
		before := up.hits.Load()
		code, body := g.get("/health")
		if code != http.StatusBadRequest || !strings.Contains(body, "HTTPS server") {
			t.Errorf("plain http:// to the TLS port: got %d %q, want 400 \"Client sent an HTTP request to an HTTPS server\"", code, body)
		}
		if got := up.hits.Load(); got != before {
			t.Errorf("upstream saw %d requests, want %d: plain HTTP must not be forwarded", got, before)
		}
	})
}

// TestReloadOnFileChange: a rewritten file is served without a signal; a bad one is
// refused, logged with its location and counted, and the previous routes keep serving.
func TestReloadOnFileChange(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	base := gatewayConfig(t, up.URL, "")
	writeConfig(t, path, base+routeYAML("a", "api"))
	g := startGateway(t, path)
	wantRoutes(t, g, "a", "b")

	writeConfig(t, path, base+routeYAML("b", "api"))
	eventually(t, "route b served after the file changed", func() bool { code, _ := g.get("/b"); return code == http.StatusOK })
	wantRoutes(t, g, "b", "a")

	failures := g.metric(`authgate_config_reloads_total{result="failure"}`)
	badYAML := base + routeYAML("c", "apii")
	writeConfig(t, path, badYAML)
	wantRefused(t, g, badYAML, "gateway.yaml")
	wantRoutes(t, g, "b", "c")
	if got := g.metric(`authgate_config_reloads_total{result="failure"}`); got != failures+1 {
		t.Errorf("authgate_config_reloads_total{result=\"failure\"} = %v, want %v", got, failures+1)
	}

	// The fix arrives as editors write it: a new file renamed over the old one.
	tmp := filepath.Join(dir, ".gateway.yaml.tmp")
	writeConfig(t, tmp, base+routeYAML("c", "api"))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route c served after the fixed file was renamed into place", func() bool { code, _ := g.get("/c"); return code == http.StatusOK })
	wantRoutes(t, g, "c", "b")
	if got := g.metric(`authgate_config_reloads_total{result="success"}`); got < 2 {
		t.Errorf("authgate_config_reloads_total{result=\"success\"} = %v, want >= 2", got)
	}
}

// TestReloadOnSIGHUP: gateway.yaml is a symlink to a file in another directory, so the
// directory watch never sees the target change and only SIGHUP can reload it.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	watched, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "real.yaml")
	path := filepath.Join(watched, "gateway.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	base := gatewayConfig(t, up.URL, "")
	writeConfig(t, target, base+routeYAML("a", "api"))
	g := startGateway(t, path)
	wantRoutes(t, g, "a", "b")

	writeConfig(t, target, base+routeYAML("b", "api"))
	g.signal(syscall.SIGHUP)
	eventually(t, "route b served after SIGHUP", func() bool { code, _ := g.get("/b"); return code == http.StatusOK })
	wantRoutes(t, g, "b", "a")

	failures := g.metric(`authgate_config_reloads_total{result="failure"}`)
	badYAML := base + routeYAML("c", "apii")
	writeConfig(t, target, badYAML)
	g.signal(syscall.SIGHUP)
	wantRefused(t, g, badYAML, "gateway.yaml")
	wantRoutes(t, g, "b", "c")
	if got := g.metric(`authgate_config_reloads_total{result="failure"}`); got != failures+1 {
		t.Errorf("authgate_config_reloads_total{result=\"failure\"} = %v, want %v", got, failures+1)
	}

	writeConfig(t, target, base+routeYAML("c", "api"))
	g.signal(syscall.SIGHUP)
	eventually(t, "route c served after the file was fixed and SIGHUP sent", func() bool { code, _ := g.get("/c"); return code == http.StatusOK })
	wantRoutes(t, g, "c", "b")
}

func routeYAML(name, upstream string) string {
	return fmt.Sprintf("  - name: %s\n    match: [\"GET /%s\"]\n    upstream: %s\n    public: true\n", name, name, upstream)
}

// wantRoutes checks that /serve reaches the upstream and /gone is 404 no_route.
func wantRoutes(t *testing.T, g *gatewayProc, serve, gone string) {
	t.Helper()
	if code, body := g.get("/" + serve); code != http.StatusOK || body != "/"+serve+" from upstream" {
		t.Errorf("GET /%s: got %d %q, want 200 %q", serve, code, body, "/"+serve+" from upstream")
	}
	if code, body := g.get("/" + gone); code != http.StatusNotFound || !strings.Contains(body, "no_route") {
		t.Errorf("GET /%s: got %d %q, want 404 no_route", gone, code, body)
	}
}

// wantRefused waits for the "config reload refused" log line and checks that it names the
// file and line of the unknown upstream in badYAML.
func wantRefused(t *testing.T, g *gatewayProc, badYAML, file string) {
	t.Helper()
	line := 1 + strings.Count(badYAML[:strings.Index(badYAML, "upstream: apii")], "\n")
	want := fmt.Sprintf(`%s:%d: routes[0].upstream: unknown upstream "apii"`, file, line)
	var refused map[string]any
	eventually(t, "config reload refused log line", func() bool {
		refused = g.logLine("config reload refused")
		return refused != nil
	})
	if got, _ := refused["error"].(string); !strings.HasPrefix(got, want) {
		t.Errorf("refusal logged error %q, want it to start with %q", got, want)
	}
	if got, _ := refused["level"].(string); got != "ERROR" {
		t.Errorf("refusal logged at level %q, want ERROR", got)
	}
}

// TestSlowHeadersClosed: a client that sends part of its headers and then nothing is cut
// off after server.read_header_timeout, on both listeners.
func TestSlowHeadersClosed(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, path, gatewayConfig(t, up.URL, "server:\n  read_header_timeout: 1s\n", "health"))
	g := startGateway(t, path)
	for _, tt := range []struct{ name, addr string }{{"main", g.mainAddr}, {"ops", g.opsAddr}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", tt.addr, bound)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(bufio.NewReader(conn))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after 10s with read_header_timeout 1s")
			}
			if strings.HasPrefix(string(got), "HTTP/1.1 2") {
				t.Errorf("got %q, want the connection closed without a 2xx", got)
			}
		})
	}
	if got := up.hits.Load(); got != 0 {
		t.Errorf("upstream saw %d requests, want 0", got)
	}
}

// TestConfigFromEnvironment: without --config, serve reads $AUTHGATE_CONFIG (as in a
// container), and logs no demo warning; with neither, the embedded demo config runs and
// says so loudly.
func TestConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, path, gatewayConfig(t, up.URL, "")+routeYAML("from-env", "api"))
	g := startGateway(t, "", "AUTHGATE_CONFIG="+path)
	wantRoutes(t, g, "from-env", "nope")
	if l := g.logLine("running the embedded demo configuration"); l != nil {
		t.Errorf("demo warning with AUTHGATE_CONFIG set: %v", l)
	}

	demo := startGateway(t, "", "AUTHGATE_LISTEN=127.0.0.1:0", "AUTHGATE_OPS_LISTEN=127.0.0.1:0")
	l := demo.logLine("running the embedded demo configuration")
	if l == nil || l["level"] != "WARN" {
		t.Errorf("embedded config: demo warning %v, want a WARN line", l)
	}
}
