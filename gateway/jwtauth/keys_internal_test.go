package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The key functions refuse algorithm confusion on their own, whatever the parser's
// WithValidMethods says.
func TestKeyFuncsRefuseConfusion(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	allAlgs := []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}
	static, err := newStaticKeys(IssuerConfig{
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Keys:       map[string]crypto.PublicKey{"rsa": &rk.PublicKey, "ec": &ek.PublicKey, "ed": edPub},
	})
	if err != nil {
		t.Fatal(err)
	}
	hmac := hmacKey{secret: []byte("0123456789abcdef0123456789abcdef")}
	tok := func(alg, kid string) *jwt.Token {
		tk := jwt.New(jwt.GetSigningMethod(alg))
		if kid != "" {
			tk.Header["kid"] = kid
		}
		return tk
	}
	tests := []struct {
		name string
		kf   jwt.Keyfunc
		tok  *jwt.Token
		want error
	}{
		{"HS256 on static keys", static.keyFunc, tok("HS256", ""), ErrAlgorithm},
		{"HS256 naming an rsa key", static.keyFunc, tok("HS256", "rsa"), ErrAlgorithm},
		{"none on static keys", static.keyFunc, tok("none", ""), ErrAlgorithm},
		{"RS256 naming the ec key", static.keyFunc, tok("RS256", "ec"), ErrAlgorithm},
		{"ES384 naming the P-256 key", static.keyFunc, tok("ES384", "ec"), ErrAlgorithm},
		{"EdDSA naming the rsa key", static.keyFunc, tok("EdDSA", "rsa"), ErrAlgorithm},
		{"unknown kid", static.keyFunc, tok("RS256", "nope"), ErrUnknownKey},
		{"RS256 on hmac", hmac.keyFunc, tok("RS256", ""), ErrAlgorithm},
		{"EdDSA on hmac", hmac.keyFunc, tok("EdDSA", ""), ErrAlgorithm},
		{"none on hmac", hmac.keyFunc, tok("none", ""), ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := tt.kf(tt.tok)
			if !errors.Is(err, tt.want) || key != nil {
				t.Fatalf("got key %T, err %v; want no key, %v", key, err, tt.want)
			}
		})
	}
	// fits is the single check behind both: each key fits exactly its own algorithms.
	wantFit := []struct {
		key  any
		algs []string
	}{
		{&rk.PublicKey, []string{"RS256", "RS384", "RS512", "PS256"}},
		{&ek.PublicKey, []string{"ES256"}},
		{edPub, []string{"EdDSA"}},
		{hmac.secret, nil},
	}
	for _, f := range wantFit {
		for _, alg := range append(allAlgs, "HS256", "none") {
			want := slices.Contains(f.algs, alg)
			if got := fits(alg, f.key); got != want {
				t.Errorf("fits(%s, %T) = %v, want %v", alg, f.key, got, want)
			}
		}
	}
}
