package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a private certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf for cn (a server certificate for dnsNames, or a client certificate
// when dnsNames is empty) and returns it as a tls.Certificate and as PEM cert and key.
func (ca *testCA) issue(t *testing.T, cn string, dnsNames ...string) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageClientAuth
	if len(dnsNames) > 0 {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: dnsNames, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// TestUpstreamMTLS: an https target that requires a client certificate signed by its own
// CA, and serves a certificate from another private CA for the name upstream.internal
// only. The gateway gets through with ca_file, server_name, cert_file and key_file, and
// is refused (502 upstream_error, the upstream handler never runs) without any one of
// them.
func TestUpstreamMTLS(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "upstream CA"), newTestCA(t, "gateway client CA")
	serverPair, _, _ := serverCA.issue(t, "upstream", "upstream.internal")
	_, clientCert, clientKey := clientCA.issue(t, "authgate")
	_, otherCert, otherKey := newTestCA(t, "stranger CA").issue(t, "authgate")

	var hits atomic.Int64
	var sawClient atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			sawClient.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		io.WriteString(w, "secure "+r.URL.Path)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = discardLog()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": serverCA.pem, "client.pem": clientCert, "client-key.pem": clientKey,
		"other.pem": otherCert, "other-key.pem": otherKey}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	full := map[string]string{"ca_file": f("ca.pem"), "server_name": "upstream.internal",
		"cert_file": f("client.pem"), "key_file": f("client-key.pem")}
	without := func(keys ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for _, k := range keys {
			delete(m, k)
		}
		return m
	}
	tests := []struct {
		name string
		tls  map[string]string
		ok   bool
	}{
		{"ca, name and client certificate", full, true},
		{"no client certificate", without("cert_file", "key_file"), false},
		{"client certificate from another CA", func() map[string]string {
			m := without()
			m["cert_file"], m["key_file"] = f("other.pem"), f("other-key.pem")
			return m
		}(), false},
		{"no ca_file: system roots do not know the private CA", without("ca_file"), false},
		{"no server_name: the certificate is not for 127.0.0.1", without("server_name"), false},
		{"another server_name", func() map[string]string {
			m := without()
			m["server_name"] = "other.internal"
			return m
		}(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			for _, k := range []string{"ca_file", "server_name", "cert_file", "key_file"} {
				if v, ok := tc.tls[k]; ok {
					b.WriteString(k + `: "` + v + `", `)
				}
			}
			h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  secure:
    url: "`+srv.URL+`"
    timeout: 5s
    tls: {`+strings.TrimSuffix(b.String(), ", ")+`}
routes:
  - {name: secure, match: ["/"], upstream: secure, public: true}
`, nil, env(nil, nil), "")
			before := hits.Load()
			a := rawRequest(t, h.listen(), requestText("GET", "/mtls", "gw.example"))
			if tc.ok {
				if a.status != http.StatusOK || string(a.body) != "secure /mtls" {
					t.Fatalf("answer %d %s, want 200 from the upstream", a.status, a.body)
				}
				if cn, _ := sawClient.Load().(string); cn != "authgate" {
					t.Errorf("upstream saw client certificate %q, want authgate", cn)
				}
				return
			}
			assertRejected(t, a, http.StatusBadGateway, "upstream_error")
			if got := hits.Load() - before; got != 0 {
				t.Errorf("upstream handler ran %d times, want 0", got)
			}
		})
	}
}

// TestUpstreamMaxConnections: with max_connections 1 a second request to the same target
// waits for the first one's connection instead of opening another, and both are answered.
func TestUpstreamMaxConnections(t *testing.T) {
	release := make(chan struct{})
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	h := newGatewayYAML(t, gatewayHeader+`
upstreams:
  api: {url: "`+up.URL+`", timeout: 5s, max_connections: 1}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`, nil, env(nil, nil), "")
	first := make(chan answer, 1)
	go func() { first <- h.do("GET", "/hold", "") }()
	eventually(t, "the first request to hold the connection", func() bool { return conns.Load() == 1 })
	second := make(chan answer, 1)
	go func() { second <- h.do("GET", "/quick", "") }()
	select {
	case a := <-second:
		t.Fatalf("second request answered %d while the only connection was busy", a.status)
	case <-time.After(100 * time.Millisecond): // it waits (not a speed assertion: any wait passes)
	}
	close(release)
	for _, c := range []chan answer{first, second} {
		if a := <-c; a.status != http.StatusOK {
			t.Errorf("answer %d %s, want 200", a.status, a.body)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("upstream saw %d connections, want 1", got)
	}
}

// discardLog is a server error log that keeps nothing (refused handshakes are expected).
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
