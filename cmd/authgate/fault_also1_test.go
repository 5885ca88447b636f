package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPair is a self-signed certificate for 127.0.0.1 and its key, as PEM.
type testPair struct {
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newTestPair(t *testing.T, serial int64, notAfter time.Duration) testPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("authgate test %d", serial)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(notAfter).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testPair{cert: cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})}
}

// replaceFile writes content next to path and renames it onto path, as certbot and most
// tools do.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial does a new TLS handshake with the main listener, trusting every pair
// given, and returns the serial number of the certificate it was shown (-1 on error).
func servedSerial(t *testing.T, addr string, trusted ...testPair) int64 {
	t.Helper()
	roots := x509.NewCertPool()
	for _, p := range trusted {
		roots.AddCert(p.cert)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Logf("handshake: %v", err)
		return -1
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func tlsGatewayConfig(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	up := newUpstream(t, nil)
	return gatewayConfig(t, up.URL, fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile), "health")
}

// TestFaultAlso1_TLSCertReloadOnFileChange: a certificate and key replaced in place are
// served from the next handshake without a signal or restart; a pair that does not load
// is refused, logged and counted, and the previous certificate keeps serving.
func TestFaultAlso1_TLSCertReloadOnFileChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := newTestPair(t, 1, time.Hour), newTestPair(t, 2, 2*time.Hour), newTestPair(t, 3, time.Hour)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeConfig(t, certFile, string(a.certPEM))
	writeConfig(t, keyFile, string(a.keyPEM))
	path := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, path, tlsGatewayConfig(t, certFile, keyFile))
	g := startGateway(t, path)

	if got := servedSerial(t, g.mainAddr, a, b); got != 1 {
		t.Fatalf("at start: served certificate serial %d, want 1 (pair A)", got)
	}
	if got, want := g.metric("authgate_tls_certificate_expiry_seconds"), float64(a.cert.NotAfter.Unix()); got != want {
		t.Errorf("authgate_tls_certificate_expiry_seconds = %v, want %v (pair A's NotAfter)", got, want)
	}

	// Rotation: the new certificate and key renamed into place, one after the other.
	replaceFile(t, certFile, b.certPEM)
	replaceFile(t, keyFile, b.keyPEM)
	eventually(t, "pair B served after the files were replaced", func() bool { return servedSerial(t, g.mainAddr, a, b) == 2 })
	eventually(t, "expiry gauge at pair B's NotAfter", func() bool {
		return g.metric("authgate_tls_certificate_expiry_seconds") == float64(b.cert.NotAfter.Unix())
	})

	// A broken pair: B's certificate with another key, then a file that is not PEM.
	for _, broken := range []struct {
		name       string
		file, data string
	}{
		{"key of another certificate", keyFile, string(c.keyPEM)},
		{"certificate not PEM", certFile, "not a certificate\n"},
	} {
		failures := g.metric(`authgate_tls_reloads_total{result="failure"}`)
		replaceFile(t, broken.file, []byte(broken.data))
		eventually(t, broken.name+": reload failure counted", func() bool {
			return g.metric(`authgate_tls_reloads_total{result="failure"}`) > failures
		})
		if got := servedSerial(t, g.mainAddr, a, b, c); got != 2 {
			t.Errorf("%s: served certificate serial %d, want 2 (pair B kept)", broken.name, got)
		}
		if got, want := g.metric("authgate_tls_certificate_expiry_seconds"), float64(b.cert.NotAfter.Unix()); got != want {
			t.Errorf("%s: authgate_tls_certificate_expiry_seconds = %v, want %v (pair B kept)", broken.name, got, want)
		}
	}
	line := g.logLine("tls certificate reload refused")
	if line == nil || line["level"] != "ERROR" {
		t.Errorf("log line %q: got %v, want one at level ERROR", "tls certificate reload refused", line)
	}
	keyBody := strings.Split(string(c.keyPEM), "\n")[1]
	for _, l := range g.logs.all() {
		if strings.Contains(l, keyBody) {
			t.Errorf("a private key is in the log: %s", l)
		}
	}
}

// TestFaultAlso1_TLSCertReloadOnSIGHUP: the files are reached through a symlink whose
// own directory is not watched (a change there is invisible to the watch), so only
// SIGHUP can bring the new pair in.
func TestFaultAlso1_TLSCertReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	top, mid, real := t.TempDir(), t.TempDir(), t.TempDir()
	a, b := newTestPair(t, 1, time.Hour), newTestPair(t, 2, 2*time.Hour)
	for _, p := range []struct {
		name string
		data []byte
	}{{"a.crt", a.certPEM}, {"a.key", a.keyPEM}, {"b.crt", b.certPEM}, {"b.key", b.keyPEM}} {
		writeConfig(t, filepath.Join(real, p.name), string(p.data))
	}
	link := func(target, name string) {
		tmp := filepath.Join(mid, "."+name+".tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mid, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(real, "a.crt"), "tls.crt")
	link(filepath.Join(real, "a.key"), "tls.key")
	certFile, keyFile := filepath.Join(top, "tls.crt"), filepath.Join(top, "tls.key")
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join(mid, f), filepath.Join(top, f)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(top, "gateway.yaml")
	writeConfig(t, path, tlsGatewayConfig(t, certFile, keyFile))
	g := startGateway(t, path)
	if got := servedSerial(t, g.mainAddr, a, b); got != 1 {
		t.Fatalf("at start: served certificate serial %d, want 1 (pair A)", got)
	}

	link(filepath.Join(real, "b.crt"), "tls.crt")
	link(filepath.Join(real, "b.key"), "tls.key")
	g.signal(syscall.SIGHUP)
	eventually(t, "pair B served after SIGHUP", func() bool { return servedSerial(t, g.mainAddr, a, b) == 2 })
	if got := g.metric(`authgate_tls_reloads_total{result="success"}`); got < 1 {
		t.Errorf(`authgate_tls_reloads_total{result="success"} = %v, want >= 1`, got)
	}
}
