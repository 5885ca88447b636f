package jwtauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/porttest"
)

const jwksIss = "https://idp.example"

// jwksVerifier builds a Verifier for one RS256/ES256/EdDSA issuer served by url.
func jwksVerifier(t *testing.T, url string, o jwtauth.Options) (*jwtauth.Verifier, *refreshCounter) {
	t.Helper()
	rc := &refreshCounter{}
	o.OnJWKSRefresh = rc.record
	v, _ := newVerifier(t, []jwtauth.IssuerConfig{{
		Issuer: jwksIss, Algorithms: []string{"RS256", "RS384", "ES256", "EdDSA"}, JWKSURL: url,
	}}, o)
	return v, rc
}

func rsTok(t *testing.T, kid string) string {
	return sign(t, jwt.SigningMethodRS256, testKeys().rsa, kid, claims(jwksIss, nil))
}

func rs2Tok(t *testing.T, kid string) string {
	return sign(t, jwt.SigningMethodRS256, testKeys().rsa2, kid, claims(jwksIss, nil))
}

func verifyErr(v *jwtauth.Verifier, tok string) error {
	_, err := v.Verify(context.Background(), tok)
	return err
}

func TestJWKSRotation(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
	v, rc := jwksVerifier(t, srv.URL, jwtauth.Options{UnknownKIDRefresh: time.Millisecond})

	if err := verifyErr(v, rsTok(t, "a")); err != nil {
		t.Fatalf("kid a: %v", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("got %d jwks fetches after start, want 1", got)
	}

	// Rotation: the issuer adds key b; a token with kid b refreshes the set once.
	srv.setKeys(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"), jwk(&k.rsa2.PublicKey, "b", "RS256", ""))
	if err := verifyErr(v, rs2Tok(t, "b")); err != nil {
		t.Fatalf("kid b after rotation: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d jwks fetches, want 2", got)
	}
	// Known keys cause no fetch.
	for range 10 {
		if err := verifyErr(v, rsTok(t, "a")); err != nil {
			t.Fatalf("kid a: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d jwks fetches after known kids, want 2", got)
	}

	// Revocation: a is dropped; the next refresh (caused by an unknown kid) forgets it.
	srv.setKeys(t, jwk(&k.rsa2.PublicKey, "b", "RS256", "sig"))
	eventually(t, "a refresh after the limiter interval", func() bool {
		return errors.Is(verifyErr(v, rsTok(t, "c")), jwtauth.ErrUnknownKey) && srv.hits.Load() == 3
	})
	if err := verifyErr(v, rsTok(t, "a")); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("removed kid a: got %v, want ErrUnknownKey", err)
	}
	if got, want := rc.get(jwksIss, "success"), int(srv.hits.Load()); got != want {
		t.Errorf("got %d success reports, want %d (one per fetch)", got, want)
	}
	if got := rc.get(jwksIss, "failure"); got != 0 {
		t.Errorf("got %d failure reports, want 0", got)
	}
}

func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
	// One unknown-kid refresh per hour: after the first, made-up kids never reach the server.
	v, rc := jwksVerifier(t, srv.URL, jwtauth.Options{UnknownKIDRefresh: time.Hour})

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() { errs <- verifyErr(v, rsTok(t, fmt.Sprintf("made-up-%d", i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, jwtauth.ErrUnknownKey) {
			t.Fatalf("got %v, want ErrUnknownKey", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d jwks fetches for 200 unknown kids, want 2 (start + one refresh)", got)
	}
	// The limiter is spent: even a real new key waits for the periodic refresh.
	srv.setKeys(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"), jwk(&k.rsa2.PublicKey, "b", "", ""))
	if err := verifyErr(v, rs2Tok(t, "b")); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("got %v, want ErrUnknownKey while rate limited", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d jwks fetches, want still 2", got)
	}
	if got := rc.get(jwksIss, "success"); got != 2 {
		t.Errorf("got %d success reports, want 2", got)
	}
}

func TestJWKSConcurrentNewKIDOneFetch(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
	v, _ := jwksVerifier(t, srv.URL, jwtauth.Options{UnknownKIDRefresh: time.Hour})
	srv.setKeys(t, jwk(&k.rsa2.PublicKey, "b", "RS256", "sig"))
	tok := rs2Tok(t, "b")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- verifyErr(v, tok) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("new kid b: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("got %d jwks fetches, want 2", got)
	}
}

func TestJWKSOutageKeepsKeys(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
	v, rc := jwksVerifier(t, srv.URL, jwtauth.Options{
		JWKSRefreshInterval: 5 * time.Millisecond,
		UnknownKIDRefresh:   time.Millisecond,
		HTTPClient:          &http.Client{Timeout: time.Second},
	})
	if err := verifyErr(v, rsTok(t, "a")); err != nil {
		t.Fatalf("kid a: %v", err)
	}

	srv.status.Store(http.StatusServiceUnavailable)
	eventually(t, "3 failed fetches (503)", func() bool { return rc.get(jwksIss, "failure") >= 3 })
	if err := verifyErr(v, rsTok(t, "a")); err != nil {
		t.Fatalf("kid a during 503: %v", err)
	}
	if err := verifyErr(v, rsTok(t, "zzz")); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("unknown kid during 503: got %v, want ErrUnknownKey", err)
	}

	srv.Close() // connection refused from now on
	failures := rc.get(jwksIss, "failure")
	eventually(t, "3 more failed fetches (refused)", func() bool { return rc.get(jwksIss, "failure") >= failures+3 })
	if err := verifyErr(v, rsTok(t, "a")); err != nil {
		t.Fatalf("kid a while refused: %v", err)
	}
	if got := rc.get(jwksIss, "success"); got < 1 {
		t.Errorf("got %d success reports, want >= 1", got)
	}
}

func TestJWKSNeverLoaded(t *testing.T) {
	t.Run("503", func(t *testing.T) {
		k := testKeys()
		srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
		srv.status.Store(http.StatusServiceUnavailable)
		v, rc := jwksVerifier(t, srv.URL, jwtauth.Options{UnknownKIDRefresh: time.Millisecond})
		if got := rc.get(jwksIss, "failure"); got != 1 {
			t.Fatalf("got %d failure reports after start, want 1", got)
		}
		if err := verifyErr(v, rsTok(t, "a")); !errors.Is(err, jwtauth.ErrNoKeys) {
			t.Fatalf("got %v, want ErrNoKeys", err)
		}
		// The endpoint heals: an unknown-kid refresh loads the keys.
		srv.status.Store(http.StatusOK)
		eventually(t, "keys to arrive", func() bool { return verifyErr(v, rsTok(t, "a")) == nil })
		if got := rc.get(jwksIss, "success"); got != 1 {
			t.Fatalf("got %d success reports, want 1", got)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		url := porttest.Reserve(t).URL() + "/jwks.json" // nothing listens there, nor can start to
		v, rc := jwksVerifier(t, url, jwtauth.Options{UnknownKIDRefresh: time.Hour})
		if err := verifyErr(v, rsTok(t, "a")); !errors.Is(err, jwtauth.ErrNoKeys) {
			t.Fatalf("got %v, want ErrNoKeys", err)
		}
		if got := rc.get(jwksIss, "failure"); got != 2 {
			t.Fatalf("got %d failure reports, want 2 (start + one refresh)", got)
		}
	})
}

func TestJWKSKeyUseAndAlg(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t,
		jwk(&k.rsa.PublicKey, "rs256-only", "RS256", "sig"),
		jwk(&k.rsa2.PublicKey, "enc", "", "enc"),
		jwk(&k.ec256.PublicKey, "ec", "ES256", "sig"),
		jwk(k.ed.Public(), "ed", "", ""),
		jwk(testSecret, "oct", "HS256", "sig"),
	)
	v, _ := jwksVerifier(t, srv.URL, jwtauth.Options{UnknownKIDRefresh: time.Hour})
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"RS256 with its key", rsTok(t, "rs256-only"), nil},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec256, "ec", claims(jwksIss, nil)), nil},
		{"EdDSA, key without alg and use", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(jwksIss, nil)), nil},
		{"EdDSA without kid", sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(jwksIss, nil)), nil},
		{"RS384 on an RS256 JWK", sign(t, jwt.SigningMethodRS384, k.rsa, "rs256-only", claims(jwksIss, nil)), jwtauth.ErrAlgorithm},
		{"RS384 without kid: no RS384 key", sign(t, jwt.SigningMethodRS384, k.rsa, "", claims(jwksIss, nil)), jwtauth.ErrUnknownKey},
		{"use=enc key", rs2Tok(t, "enc"), jwtauth.ErrUnknownKey},
		{"use=enc key without kid", rs2Tok(t, ""), jwtauth.ErrSignature},
		{"RS256 naming the EC key", rsTok(t, "ec"), jwtauth.ErrAlgorithm},
		{"HS256 with the oct key", sign(t, jwt.SigningMethodHS256, testSecret, "oct", claims(jwksIss, nil)), jwtauth.ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyErr(v, tt.token)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestJWKSPeriodicRefreshAndClose(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwk(&k.rsa.PublicKey, "a", "RS256", "sig"))
	// No unknown-kid refresh is allowed after the first, so only the periodic refresh
	// can bring key b.
	v, rc := jwksVerifier(t, srv.URL, jwtauth.Options{JWKSRefreshInterval: 5 * time.Millisecond, UnknownKIDRefresh: time.Hour})
	if err := verifyErr(v, rsTok(t, "zzz")); !errors.Is(err, jwtauth.ErrUnknownKey) { // spends the limiter
		t.Fatalf("got %v, want ErrUnknownKey", err)
	}
	srv.setKeys(t, jwk(&k.rsa2.PublicKey, "b", "RS256", "sig"))
	eventually(t, "periodic refresh to load kid b", func() bool { return verifyErr(v, rs2Tok(t, "b")) == nil })

	v.Close()
	settled := srv.hits.Load()
	time.Sleep(50 * time.Millisecond) // ten refresh intervals: none may happen after Close
	if got := srv.hits.Load(); got > settled+1 {
		t.Fatalf("got %d fetches after Close, want at most 1 in flight", got-settled)
	}
	if err := verifyErr(v, rs2Tok(t, "b")); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
	if rc.get(jwksIss, "success") < 3 {
		t.Fatalf("got %d success reports, want >= 3", rc.get(jwksIss, "success"))
	}
}
