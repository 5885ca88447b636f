package jwtauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/jwtauth"
)

// t0 is the tests' "now".
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testSecret is the HMAC secret of the HMAC test issuers (32 bytes).
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// keys are the tests' signing keys, generated once per test binary (RSA is slow).
type keys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec256     *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() keys {
	must := func(err error) {
		if err != nil {
			panic(err) // key generation from crypto/rand does not fail
		}
	}
	var k keys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// claims returns valid claims for issuer at t0, changed by mods (a nil value deletes).
func claims(issuer string, mods map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": issuer,
		"sub": "usr_1",
		"aud": "api",
		"exp": t0.Add(time.Hour).Unix(),
		"iat": t0.Add(-time.Minute).Unix(),
		"jti": "tok_1",
	}
	for k, v := range mods {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign mints a token with golang-jwt; kid is set when not empty.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// joseSign mints a token with go-jose, a different library than the verifier's.
func joseSign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatalf("jose signer %s: %v", alg, err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("jose sign %s: %v", alg, err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newVerifier builds a Verifier on a test clock at t0 and closes it with the test.
func newVerifier(t testing.TB, issuers []jwtauth.IssuerConfig, o jwtauth.Options) (*jwtauth.Verifier, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(t0)
	if o.Now == nil {
		o.Now = clock.Now
	}
	v, err := jwtauth.New(context.Background(), issuers, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v, clock
}

// pemFile writes key as a PEM file of the given block type and returns its path.
func pemFile(t testing.TB, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkixDER(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// jwksServer is a JWKS endpoint whose keys and health the test changes.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	status atomic.Int64 // 0 or 200: serve keys; else answer with this status
	body   atomic.Pointer[[]byte]
}

func newJWKSServer(t testing.TB, ks ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setKeys(t, ks...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if st := s.status.Load(); st != 0 && st != http.StatusOK {
			w.WriteHeader(int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, ks ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

// jwk describes a public key for the JWKS server.
func jwk(key any, kid, alg, use string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}
}

// refreshCounter counts OnJWKSRefresh calls.
type refreshCounter struct {
	mu     sync.Mutex
	counts map[string]int // "issuer result" -> calls
}

func (c *refreshCounter) record(issuer, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[issuer+" "+result]++
}

func (c *refreshCounter) get(issuer, result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[issuer+" "+result]
}

// eventually polls cond every few milliseconds for at most 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func pemEncode(t testing.TB, blockType string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}
