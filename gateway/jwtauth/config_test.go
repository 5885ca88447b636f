package jwtauth_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/jwtauth"
)

func TestNewRefusesBadConfig(t *testing.T) {
	k := testKeys()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a-secret-that-must-never-be-logged-0123")
	ok := jwtauth.IssuerConfig{Issuer: "https://ok.example", Algorithms: []string{"HS256"}, HMACSecret: testSecret}
	tests := []struct {
		name    string
		issuers []jwtauth.IssuerConfig
		opts    jwtauth.Options
		want    string // substring of the error
	}{
		{"no issuers", nil, jwtauth.Options{}, "no issuers"},
		{"negative leeway", []jwtauth.IssuerConfig{ok}, jwtauth.Options{Leeway: -time.Second}, "leeway"},
		{"missing issuer", []jwtauth.IssuerConfig{{Algorithms: []string{"HS256"}, HMACSecret: testSecret}}, jwtauth.Options{}, "issuer is required"},
		{"duplicate issuer", []jwtauth.IssuerConfig{ok, ok}, jwtauth.Options{}, "duplicate issuer"},
		{"no algorithms", []jwtauth.IssuerConfig{{Issuer: "i", HMACSecret: testSecret}}, jwtauth.Options{}, "at least one is required"},
		{"no key source", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"RS256"}}}, jwtauth.Options{}, "exactly one of"},
		{"two key sources", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"HS256"}, HMACSecret: testSecret, JWKSURL: "https://x/jwks"}}, jwtauth.Options{}, "exactly one of"},
		{"none", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"none"}, JWKSURL: "https://x/jwks"}}, jwtauth.Options{}, `unsupported "none"`},
		{"ES512 unsupported", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"ES512"}, JWKSURL: "https://x/jwks"}}, jwtauth.Options{}, `unsupported "ES512"`},
		{"HS256 on jwks", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"HS256"}, JWKSURL: "https://x/jwks"}}, jwtauth.Options{}, `"HS256" needs an hmac secret`},
		{"RS256 on hmac", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"HS256", "RS256"}, HMACSecret: secret}}, jwtauth.Options{}, `"RS256" cannot be used with an hmac secret`},
		{"short secret", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"HS384"}, HMACSecret: secret}}, jwtauth.Options{}, "at least 48 bytes, got 39"},
		{"bad jwks url", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"RS256"}, JWKSURL: "file:///etc/jwks"}}, jwtauth.Options{}, "jwks url"},
		{"empty audience", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"HS256"}, HMACSecret: testSecret, Audiences: []string{""}}}, jwtauth.Options{}, "audiences"},
		{"weak rsa key", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&weak.PublicKey}}}, jwtauth.Options{}, "shorter than 2048"},
		{"no key for an alg", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"RS256", "ES384"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec256.PublicKey}}}, jwtauth.Options{}, `"ES384": no key`},
		{"unsupported key type", []jwtauth.IssuerConfig{{Issuer: "i", Algorithms: []string{"RS256"}, Keys: map[string]crypto.PublicKey{"x": "not a key"}}}, jwtauth.Options{}, "unsupported key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jwtauth.New(context.Background(), tt.issuers, tt.opts)
			if err == nil {
				v.Close()
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), string(secret)) || strings.Contains(err.Error(), string(testSecret)) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestLoadPublicKeyFiles(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.ec384.Public(), k.ec384)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	pkixFile := write("pkix.pem", append(pemEncode(t, "PUBLIC KEY", pkixDER(t, &k.rsa.PublicKey)), pemEncode(t, "PUBLIC KEY", pkixDER(t, k.ed.Public()))...))
	pkcs1File := write("pkcs1.pem", pemEncode(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa2.PublicKey)))
	certFile := write("cert.pem", pemEncode(t, "CERTIFICATE", certDER))

	got, err := jwtauth.LoadPublicKeyFiles([]string{pkixFile, pkcs1File, certFile})
	if err != nil {
		t.Fatalf("LoadPublicKeyFiles: %v", err)
	}
	want := []crypto.PublicKey{&k.rsa.PublicKey, k.ed.Public(), &k.rsa2.PublicKey, k.ec384.Public()}
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].(interface{ Equal(crypto.PublicKey) bool }).Equal(want[i]) {
			t.Errorf("key %d: got %T, not the key written", i, got[i])
		}
	}

	privFile := write("private.pem", pemEncode(t, "PRIVATE KEY", privDER))
	emptyFile := write("empty.pem", []byte("no pem here\n"))
	garbageFile := write("garbage.pem", pemEncode(t, "PUBLIC KEY", []byte("garbage")))
	errTests := []struct {
		name, path, want string
	}{
		{"private key", privFile, `private.pem: pem block 1: unexpected block type "PRIVATE KEY"`},
		{"no pem", emptyFile, "empty.pem: no pem block found"},
		{"garbage", garbageFile, "garbage.pem: pem block 1"},
		{"missing", filepath.Join(dir, "missing.pem"), "missing.pem"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwtauth.LoadPublicKeyFiles([]string{pkixFile, tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
