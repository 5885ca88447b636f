package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

const hmacSecret = "0123456789abcdef0123456789abcdef" // 32 bytes, HS256's minimum

// mint signs claims with go-jose, a different JWT library than the gateway's.
func mint(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestExternalIssuers: tokens of configured issuers (an HMAC one, and a JWKS one with
// EdDSA) open routes by their scopes and roles; refused tokens never reach the upstream.
func TestExternalIssuers(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	}))
	t.Cleanup(jwks.Close)
	h := newGateway(t, `jwt:
  leeway: 10s
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "`+hmacSecret+`"
      algorithms: ["HS256"]
    - issuer: "https://ed.example.com/"
      audiences: ["api"]
      jwks_url: "`+jwks.URL+`"
      algorithms: ["EdDSA"]
      role_claim: "role"
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
  - name: reports-generate
    match: ["POST /api/v1/reports/generate/{$}"]
    upstream: api
    scopes: ["reports:generate"]
`, "api")
	api := h.ups["api"]
	now := time.Now()
	claims := func(iss string, extra map[string]any) map[string]any {
		c := map[string]any{"iss": iss, "sub": "u-1", "aud": "api", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	hs := mint(t, jose.HS256, []byte(hmacSecret), "", claims("https://hs.example.com/", map[string]any{"scope": "reports:read"}))
	ed := mint(t, jose.EdDSA, priv, "k1", claims("https://ed.example.com/", map[string]any{"role": "member", "org": "acme"}))

	a := h.do("GET", "/api/v1/reports/", "", bearer(hs))
	if a.status != http.StatusOK {
		t.Fatalf("HS256 token: %d %s", a.status, a.body)
	}
	got := api.requests()[0].Header
	if got.Get("X-Auth-Method") != "jwt" || got.Get("X-Auth-Subject") != "u-1" || got.Get("X-Auth-Scopes") != "reports:read" {
		t.Errorf("forwarded identity: %v", got)
	}
	// The HMAC token has reports:read only; the EdDSA token's role (member) has reports:*.
	assertRejected(t, h.do("POST", "/api/v1/reports/generate/", "", bearer(hs)), http.StatusForbidden, "insufficient_scope")
	if a := h.do("POST", "/api/v1/reports/generate/", "", bearer(ed)); a.status != http.StatusOK {
		t.Fatalf("EdDSA token with role member: %d %s", a.status, a.body)
	}
	if org := api.requests()[1].Header.Get("X-Auth-Org"); org != "acme" {
		t.Errorf("X-Auth-Org = %q, want acme", org)
	}

	api.reset()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://hs.example.com/","sub":"u-1","aud":"api","exp":9999999999,"scope":"reports:read"}`)) + "."
	refusals := []struct {
		name, token, code string
	}{
		{"expired", mint(t, jose.HS256, []byte(hmacSecret), "", claims("https://hs.example.com/", map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired_token"},
		{"alg none", none, "invalid_token"},
		{"wrong audience", mint(t, jose.HS256, []byte(hmacSecret), "", claims("https://hs.example.com/", map[string]any{"aud": "other"})), "invalid_token"},
		{"unknown issuer", mint(t, jose.HS256, []byte(hmacSecret), "", claims("https://evil.example.com/", nil)), "invalid_token"},
		{"HS256 on the EdDSA issuer", mint(t, jose.HS256, []byte(hmacSecret), "k1", claims("https://ed.example.com/", nil)), "invalid_token"},
		{"unknown kid", mint(t, jose.EdDSA, priv, "k2", claims("https://ed.example.com/", nil)), "invalid_token"},
		{"nbf in the future", mint(t, jose.HS256, []byte(hmacSecret), "", claims("https://hs.example.com/", map[string]any{"nbf": now.Add(time.Minute).Unix()})), "invalid_token"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			a := h.do("GET", "/api/v1/reports/", "", bearer(r.token))
			assertRejected(t, a, http.StatusUnauthorized, r.code)
			if a.header.Get("Www-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate")
			}
		})
	}
	assertNoRequests(t, api)
	if v := metricValue(t, h.reg, "authgate_jwks_refresh_total", map[string]string{"issuer": "https://ed.example.com/", "result": "success"}); v < 1 {
		t.Errorf("authgate_jwks_refresh_total{success} = %v, want at least the fetch at start", v)
	}
}
