package jwtauth_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

const leeway = 30 * time.Second

// refuseIssuers: an HMAC issuer with an audience and a role claim, and an RS256 issuer
// whose key comes from a PEM file (whose bytes the alg-confusion attack uses).
func refuseIssuers(t *testing.T) ([]jwtauth.IssuerConfig, []byte) {
	k := testKeys()
	path := pemFile(t, "PUBLIC KEY", pkixDER(t, &k.rsa.PublicKey))
	pub, err := jwtauth.LoadPublicKeyFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pemEncode(t, "PUBLIC KEY", pkixDER(t, &k.rsa.PublicKey))
	return []jwtauth.IssuerConfig{
		{Issuer: "https://hs.example", Audiences: []string{"api", "api2"}, Algorithms: []string{"HS256"}, HMACSecret: testSecret, RoleClaim: "role"},
		{Issuer: "https://rs.example", Algorithms: []string{"RS256"}, PublicKeys: pub,
			Keys: map[string]crypto.PublicKey{"ec": &k.ec256.PublicKey}},
	}, pemBytes
}

// rawToken builds a token from a hand-written header, the claims and a signature.
func rawToken(t *testing.T, header string, c jwt.MapClaims, sig string) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc(payload) + "." + sig
}

func TestVerifyRefusals(t *testing.T) {
	k := testKeys()
	issuers, rsaPEM := refuseIssuers(t)
	v, _ := newVerifier(t, issuers, jwtauth.Options{Leeway: leeway})
	const hs, rs = "https://hs.example", "https://rs.example"
	hsTok := func(mods map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, testSecret, "", claims(hs, mods))
	}
	valid := hsTok(nil)

	tests := []struct {
		name  string
		token string
		want  error // nil: must verify
	}{
		{"valid", valid, nil},
		{"valid aud array with one match", hsTok(map[string]any{"aud": []string{"x", "api2"}}), nil},
		{"valid RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(rs, nil)), nil},
		{"alg none", rawToken(t, `{"alg":"none","typ":"JWT"}`, claims(hs, nil), ""), jwtauth.ErrAlgorithm},
		{"alg none on rsa issuer", rawToken(t, `{"alg":"none"}`, claims(rs, nil), ""), jwtauth.ErrAlgorithm},
		{"alg None", rawToken(t, `{"alg":"None"}`, claims(hs, nil), ""), jwtauth.ErrAlgorithm},
		{"alg missing", rawToken(t, `{"typ":"JWT"}`, claims(hs, nil), "c2ln"), jwtauth.ErrAlgorithm},
		{"alg confusion: HS256 with the RSA PEM as secret", sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims(rs, nil)), jwtauth.ErrAlgorithm},
		{"alg not pinned", sign(t, jwt.SigningMethodRS384, k.rsa, "", claims(rs, nil)), jwtauth.ErrAlgorithm},
		{"alg HS512 not pinned", sign(t, jwt.SigningMethodHS512, append(testSecret, testSecret...), "", claims(hs, nil)), jwtauth.ErrAlgorithm},
		{"kid of a key of another type", sign(t, jwt.SigningMethodRS256, k.rsa, "ec", claims(rs, nil)), jwtauth.ErrAlgorithm},
		{"wrong iss (trailing slash)", hsTok(map[string]any{"iss": hs + "/"}), jwtauth.ErrUnknownIssuer},
		{"unknown iss", hsTok(map[string]any{"iss": "https://evil.example"}), jwtauth.ErrUnknownIssuer},
		{"missing iss", hsTok(map[string]any{"iss": nil}), jwtauth.ErrUnknownIssuer},
		{"iss not a string", hsTok(map[string]any{"iss": 7}), jwtauth.ErrMalformed},
		{"wrong aud", hsTok(map[string]any{"aud": "other"}), jwtauth.ErrClaims},
		{"no aud", hsTok(map[string]any{"aud": nil}), jwtauth.ErrClaims},
		{"empty aud", hsTok(map[string]any{"aud": []string{}}), jwtauth.ErrClaims},
		{"missing exp", hsTok(map[string]any{"exp": nil}), jwtauth.ErrClaims},
		{"exp not a number", hsTok(map[string]any{"exp": "tomorrow"}), jwtauth.ErrClaims},
		{"expired", hsTok(map[string]any{"exp": t0.Add(-time.Hour).Unix()}), jwtauth.ErrExpired},
		{"exp leeway-1s ago passes", hsTok(map[string]any{"exp": t0.Add(-leeway + time.Second).Unix()}), nil},
		{"exp leeway+1s ago fails", hsTok(map[string]any{"exp": t0.Add(-leeway - time.Second).Unix()}), jwtauth.ErrExpired},
		{"nbf in the future", hsTok(map[string]any{"nbf": t0.Add(time.Hour).Unix()}), jwtauth.ErrNotYetValid},
		{"nbf leeway-1s ahead passes", hsTok(map[string]any{"nbf": t0.Add(leeway - time.Second).Unix()}), nil},
		{"nbf leeway+1s ahead fails", hsTok(map[string]any{"nbf": t0.Add(leeway + time.Second).Unix()}), jwtauth.ErrNotYetValid},
		{"iat in the future", hsTok(map[string]any{"iat": t0.Add(leeway + time.Second).Unix()}), jwtauth.ErrNotYetValid},
		{"iat leeway-1s ahead passes", hsTok(map[string]any{"iat": t0.Add(leeway - time.Second).Unix()}), nil},
		{"missing sub", hsTok(map[string]any{"sub": nil}), jwtauth.ErrClaims},
		{"empty sub", hsTok(map[string]any{"sub": ""}), jwtauth.ErrClaims},
		{"sub not a string", hsTok(map[string]any{"sub": 42}), jwtauth.ErrClaims},
		{"jti not a string", hsTok(map[string]any{"jti": 42}), jwtauth.ErrClaims},
		{"role not a string", hsTok(map[string]any{"role": []string{"admin"}}), jwtauth.ErrClaims},
		{"org not a string", hsTok(map[string]any{"org": 1}), jwtauth.ErrClaims},
		{"bad signature", valid[:len(valid)-4] + flip(valid[len(valid)-4:]), jwtauth.ErrSignature},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32"), "", claims(hs, nil)), jwtauth.ErrSignature},
		{"changed payload", tamper(t, valid), jwtauth.ErrSignature},
		{"rsa signed by another key", sign(t, jwt.SigningMethodRS256, k.rsa2, "", claims(rs, nil)), jwtauth.ErrSignature},
		{"unknown kid, rsa key tried", sign(t, jwt.SigningMethodRS256, k.rsa2, "nope", claims(rs, nil)), jwtauth.ErrSignature},
		{"kid not a string", signHeader(t, map[string]any{"kid": 3}, claims(rs, nil)), jwtauth.ErrMalformed},
		{"crit header", signHeader(t, map[string]any{"crit": []string{"exp"}}, claims(rs, nil)), jwtauth.ErrMalformed},
		{"truncated", valid[:strings.LastIndexByte(valid, '.')], jwtauth.ErrMalformed},
		{"truncated mid payload", valid[:len(valid)/2], jwtauth.ErrMalformed},
		{"four segments", valid + ".x", jwtauth.ErrMalformed},
		{"garbage", "not a token", jwtauth.ErrMalformed},
		{"garbage segments", "a.b.c", jwtauth.ErrMalformed},
		{"empty", "", jwtauth.ErrMalformed},
		{"padded base64", strings.Replace(valid, ".", "==.", 1), jwtauth.ErrMalformed},
		{"header not json", base64.RawURLEncoding.EncodeToString([]byte("{")) + valid[strings.IndexByte(valid, '.'):], jwtauth.ErrMalformed},
		{"too long", valid + strings.Repeat("A", 17<<10), jwtauth.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if got.Subject != "usr_1" {
					t.Fatalf("got sub %q, want usr_1", got.Subject)
				}
				return
			}
			t.Logf("err: %v", err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got.Subject != "" || got.Raw != nil {
				t.Errorf("got claims %+v with an error, want zero", got)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

// flip changes every character of a signature tail, keeping it valid base64url.
func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

// tamper replaces a token's payload with one granting a different subject.
func tamper(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	payload, err := json.Marshal(claims("https://hs.example", map[string]any{"sub": "usr_admin"}))
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// signHeader signs an RS256 token with extra header fields.
func signHeader(t *testing.T, header map[string]any, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(testKeys().rsa)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
