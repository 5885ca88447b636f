package tlscert_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/tlscert"
)

func writePair(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Duration(serial) * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func serial(t *testing.T, p *tlscert.Pair) int64 {
	t.Helper()
	c, err := p.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v, %v", c, err)
	}
	return c.Leaf.SerialNumber.Int64()
}

func TestFaultAlso1_PairReloadKeepsOldOnFailure(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 1)
	p, err := tlscert.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(t, p); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writePair(t, dir, 2)
	if err := p.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := serial(t, p); got != 2 {
		t.Fatalf("after reload: serial %d, want 2", got)
	}
	want := p.NotAfter()
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a broken key: got nil error, want one")
	}
	if got := serial(t, p); got != 2 {
		t.Errorf("after a failed reload: serial %d, want 2 (kept)", got)
	}
	if !p.NotAfter().Equal(want) {
		t.Errorf("NotAfter changed after a failed reload: %v, want %v", p.NotAfter(), want)
	}
	if _, err := tlscert.Load(certFile, keyFile); err == nil {
		t.Error("Load of a broken pair: got nil error, want one")
	}
}
