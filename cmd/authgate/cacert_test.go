package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
)

// testCA writes a private certificate authority (ca.pem) and a server certificate for
// 127.0.0.1 it signed (cert.pem, key.pem) to dir.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "authgate test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeConfig(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeConfig(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeConfig(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})))
	return caFile, certFile, keyFile
}

// TestCACert: against a TLS gateway whose certificate a private CA signed, the CLI
// fails with a hint naming --cacert, AUTHGATE_CACERT and SSL_CERT_FILE, and works with
// --cacert or AUTHGATE_CACERT; a file without a certificate is refused.
func TestCACert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, certFile, keyFile := testCA(t, dir)
	adminKey, _ := apikey.Generate("sk", apikey.Live)
	path := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, path, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", adminKey, 1)+
		fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile))
	g := startGateway(t, path)
	if g.scheme != "https" {
		t.Fatalf("serving scheme %q, want https", g.scheme)
	}
	base := "https://" + g.mainAddr
	env := map[string]string{"HOME": t.TempDir(), "AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": adminKey}

	_, _, err := cli{t: t, env: env}.run("keys", "list")
	for _, want := range []string{"certificate signed by unknown authority", "--cacert", "AUTHGATE_CACERT", "SSL_CERT_FILE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without --cacert: got %v, want an error containing %q", err, want)
		}
	}
	if out := (cli{t: t, env: env}).ok("keys", "list", "--cacert", caFile); !strings.Contains(out, "bootstrap") {
		t.Errorf("--cacert: got %q, want the bootstrap key", out)
	}
	withEnv := map[string]string{"AUTHGATE_CACERT": caFile}
	for k, v := range env {
		withEnv[k] = v
	}
	if out := (cli{t: t, env: withEnv}).ok("keys", "list"); !strings.Contains(out, "bootstrap") {
		t.Errorf("AUTHGATE_CACERT: got %q, want the bootstrap key", out)
	}
	// login, users and mfa share the transport: login reaches the TLS gateway too (and
	// is refused there for want of an issuer, which proves the handshake worked).
	_, _, err = cli{t: t, env: env}.in("pw\n", "login", "--email", "a@example.com", "--password-stdin", "--cacert", caFile)
	if err == nil || strings.Contains(err.Error(), "certificate") {
		t.Errorf("login --cacert: got %v, want an answer from the gateway", err)
	}

	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (cli{t: t, env: env}).run("keys", "list", "--cacert", notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("--cacert of a file without a certificate: got %v", err)
	}
	if _, _, err := (cli{t: t, env: env}).run("keys", "list", "--cacert", filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("--cacert of a missing file: got %v", err)
	}
}
