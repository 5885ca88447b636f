package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

// seenUpstream is the bench upstream that also records the identity authgate forwarded.
type seenUpstream struct {
	mu      sync.Mutex
	methods []string // X-Auth-Method of each request
	subject []string // X-Auth-Subject of each request
}

func (u *seenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.methods = append(u.methods, r.Header.Get("X-Auth-Method"))
	u.subject = append(u.subject, r.Header.Get("X-Auth-Subject"))
	u.mu.Unlock()
	upstreamHandler().ServeHTTP(w, r)
}

func (u *seenUpstream) seen() (methods, subjects []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.methods...), append([]string(nil), u.subject...)
}

// benchGateway builds, in process, the gateway authgate would run for sc, in front of a
// recording bench upstream.
func benchGateway(t *testing.T, sc scenario, keys *jwtKeys) (*gateway.Server, *seenUpstream, *prometheus.Registry) {
	t.Helper()
	up := &seenUpstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	env := map[string]string{}
	for _, kv := range append(append([]string(nil), sc.env...), keys.env()...) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	yaml := gatewayConfig("127.0.0.1:0", "127.0.0.1:0", srv.URL, sc.gateway)
	cfg, err := config.Parse(sc.name+".yaml", []byte(yaml), getenv)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{
		Logger:   slog.New(slog.DiscardHandler),
		Registry: reg,
		Getenv:   getenv,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return s, up, reg
}

// cacheLookups is authgate_credential_cache_total by result.
func cacheLookups(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "authgate_credential_cache_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// get sends GET path with header through s and returns the status and the JSON error code
// ("" for a non-JSON body such as the upstream's).
func get(t *testing.T, s *gateway.Server, path string, header http.Header) (int, []byte, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, vs := range header {
		r.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, rec.Body.Bytes(), body.Error
}

func bearerHeader(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestJWTRowsAccepted builds each JWT row's gateway from its own config and checks that
// the token the benchmark mints opens the row's route as that JWT (not as anything else),
// on the first request and on the cached second, while the tokens the row must not accept
// are refused before the upstream.
func TestJWTRowsAccepted(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := newJWTKeys(t.TempDir()) // same issuers, keys of another run
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rows := 0
	for _, base := range scenarios {
		if base.jwtAlg == "" || base.distinctTokens { // those: TestUncachedRowsTokens
			continue
		}
		rows++
		t.Run(base.name, func(t *testing.T) {
			sc, err := base.withCredential(keys, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			s, up, reg := benchGateway(t, sc, keys)
			for i := range 2 { // the second request is a verified-token cache hit
				status, body, _ := get(t, s, sc.path, sc.header)
				if status != sc.want || !bytes.Equal(body, upstreamBody) {
					t.Fatalf("request %d: %d %q, want %d and the upstream's body", i+1, status, body, sc.want)
				}
			}
			// What the row measures: one signature check, then cache hits only.
			if got := cacheLookups(t, reg); got["miss"] != 1 || got["hit"] != 1 {
				t.Errorf("credential cache lookups %v, want 1 miss then 1 hit", got)
			}
			methods, subjects := up.seen()
			if strings.Join(methods, ",") != "jwt,jwt" || strings.Join(subjects, ",") != "bench,bench" {
				t.Errorf("upstream saw X-Auth-Method %q, X-Auth-Subject %q; want jwt and bench twice", methods, subjects)
			}

			forged, err := other.mint(sc.jwtAlg, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			expired, err := keys.mint(sc.jwtAlg, now.Add(-2*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			refused := []struct {
				name   string
				header http.Header
				status int
				code   string
			}{
				{"no credential", nil, http.StatusUnauthorized, "missing_credentials"},
				{"signed with another run's key", bearerHeader(forged), http.StatusUnauthorized, "invalid_token"},
				{"expired", bearerHeader(expired), http.StatusUnauthorized, "expired_token"},
			}
			for _, r := range refused {
				status, body, code := get(t, s, sc.path, r.header)
				if status != r.status || code != r.code {
					t.Errorf("%s: %d %s, want %d %s", r.name, status, body, r.status, r.code)
				}
			}
			if m, _ := up.seen(); len(m) != 2 {
				t.Errorf("upstream saw %d requests, want only the 2 accepted ones", len(m))
			}
		})
	}
	if rows != 2 {
		t.Errorf("%d JWT rows, want 2 (HS256 and EdDSA)", rows)
	}
}

// TestMint checks the claims and header of the bench tokens by verifying them with the
// run's keys, the way an issuer-neutral verifier would.
func TestMint(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		alg string
		iss string
		key any
	}{
		{algHS256, issuerHS256, keys.hmacSecret},
		{algEdDSA, issuerEdDSA, keys.edPrivate.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			tok, err := keys.mint(tt.alg, now, 90*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			claims := jwt.MapClaims{}
			p := jwt.NewParser(jwt.WithValidMethods([]string{tt.alg}), jwt.WithTimeFunc(func() time.Time { return now }))
			parsed, err := p.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return tt.key, nil })
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if parsed.Header["alg"] != tt.alg {
				t.Errorf("alg = %v, want %s", parsed.Header["alg"], tt.alg)
			}
			want := map[string]any{
				"iss": tt.iss, "sub": "bench", "aud": benchAudience, "scope": benchScope,
				"iat": float64(now.Unix()), "exp": float64(now.Add(90 * time.Minute).Unix()),
			}
			if len(claims) != len(want) {
				t.Errorf("claims %v, want exactly %v", claims, want)
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("%s = %v (%T), want %v", k, claims[k], claims[k], v)
				}
			}
		})
	}
	if _, err := keys.mint("RS256", now, time.Hour); err == nil {
		t.Error("RS256: no error, want one (no bench issuer uses it)")
	}
}

// TestJWTKeysFiles checks the public key file authgate reads and that the secrets stay
// out of the environment's names and the String form.
func TestJWTKeysFiles(t *testing.T) {
	dir := t.TempDir()
	keys, err := newJWTKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(keys.edPubFile)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("want one PUBLIC KEY block, got %q", b)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if ed, ok := pub.(ed25519.PublicKey); !ok || !ed.Equal(keys.edPrivate.Public()) {
		t.Errorf("file holds %T, want the Ed25519 public key of the minting key", pub)
	}
	if len(keys.hmacSecret) < 32 {
		t.Errorf("hmac secret of %d bytes, want >= 32 (HS256)", len(keys.hmacSecret))
	}
	wantEnv := []string{envHMACSecret + "=" + string(keys.hmacSecret), envEdDSAKeyFile + "=" + keys.edPubFile}
	if got := keys.env(); strings.Join(got, "\n") != strings.Join(wantEnv, "\n") {
		t.Errorf("env = %q, want %q", got, wantEnv)
	}
	if s := keys.String(); strings.Contains(s, string(keys.hmacSecret)) {
		t.Errorf("String() = %q holds the HMAC secret", s)
	}
	again, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again.hmacSecret, keys.hmacSecret) || again.edPrivate.Equal(keys.edPrivate) {
		t.Error("two runs got the same keys, want fresh ones")
	}
	if _, err := newJWTKeys(dir + "/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unwritable dir: err = %v, want os.ErrNotExist", err)
	}
}

// TestWithCredential: a JWT row gets its own Authorization header; other rows and the
// scenario table are left as they are.
func TestWithCredential(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	plain := scenario{name: "p", header: http.Header{"X-Api-Key": {benchKey}}}
	got, err := plain.withCredential(keys, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.header) != 1 || got.header.Get("X-Api-Key") != benchKey {
		t.Errorf("header = %v, want only X-Api-Key", got.header)
	}

	base := scenario{name: "j", jwtAlg: algEdDSA, header: http.Header{"X-Other": {"1"}}}
	got, err = base.withCredential(keys, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want, err := keys.mint(algEdDSA, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.header.Get("Authorization"); a != "Bearer "+want || got.header.Get("X-Other") != "1" {
		t.Errorf("header = %v, want X-Other and Authorization: Bearer %s", got.header, want)
	}
	if _, ok := base.header["Authorization"]; ok {
		t.Error("the scenario's own header was modified")
	}

	bad := scenario{name: "bad", jwtAlg: "none"}
	if _, err := bad.withCredential(keys, now, time.Hour); err == nil || !strings.Contains(err.Error(), "bad:") {
		t.Errorf("err = %v, want one naming the row", err)
	}
}

func TestTokenTTL(t *testing.T) {
	o := options{warmup: 2 * time.Second, rounds: 3, duration: 5 * time.Second}
	if got, want := tokenTTL(o, 4), time.Hour+4*17*time.Second; got != want {
		t.Errorf("tokenTTL = %s, want %s", got, want)
	}
}
