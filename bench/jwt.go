package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The JWT issuers of the benchmark's gateway (see publicAndProtected). Their keys are made
// per run by newJWTKeys and reach authgate through these environment variables.
const (
	issuerHS256   = "https://hs256.bench.authgate.invalid/"
	issuerEdDSA   = "https://eddsa.bench.authgate.invalid/"
	benchAudience = "bench"
	// benchScope is the scope GET /private requires; the bench tokens carry it.
	benchScope = "bench:read"

	envHMACSecret   = "BENCH_JWT_HS256_SECRET"
	envEdDSAKeyFile = "BENCH_JWT_EDDSA_PUBLIC_KEY_FILE"
)

// The signing algorithms a scenario's jwtAlg may name.
const (
	algHS256 = "HS256"
	algEdDSA = "EdDSA"
)

// jwtKeys are one run's JWT signing keys: an HMAC secret shared with authgate through
// the environment, and an Ed25519 key pair whose public half authgate reads from a PEM
// file (public_key_files) while the private half stays in the benchmark, which mints.
type jwtKeys struct {
	hmacSecret []byte
	edPrivate  ed25519.PrivateKey
	edPubFile  string
}

// newJWTKeys makes fresh keys and writes the Ed25519 public key, PKIX PEM, into dir.
func newJWTKeys(dir string) (*jwtKeys, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("jwt keys: hmac secret: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("jwt keys: ed25519: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("jwt keys: ed25519 public key: %w", err)
	}
	path := filepath.Join(dir, "jwt-eddsa.pub.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("jwt keys: %w", err)
	}
	return &jwtKeys{
		// Printable, so it can travel in an environment variable: 43 characters, 256 bits.
		hmacSecret: []byte(base64.RawURLEncoding.EncodeToString(raw)),
		edPrivate:  priv,
		edPubFile:  path,
	}, nil
}

// env is what every authgate process of the run gets, for publicAndProtected's issuers.
func (k *jwtKeys) env() []string {
	return []string{envHMACSecret + "=" + string(k.hmacSecret), envEdDSAKeyFile + "=" + k.edPubFile}
}

// String keeps the secret and the private key out of any output.
func (k *jwtKeys) String() string { return "jwtKeys{ed25519 public key: " + k.edPubFile + "}" }

// mint signs a token of alg's bench issuer for subject "bench", audience benchAudience and
// scope benchScope, issued at now and valid for ttl.
func (k *jwtKeys) mint(alg string, now time.Time, ttl time.Duration) (string, error) {
	return k.mintID(alg, now, ttl, "")
}

// mintID is mint with, when jti is not "", a jti claim: tokens that differ in it alone are
// distinct strings, so each is a verified-token cache miss of its own.
func (k *jwtKeys) mintID(alg string, now time.Time, ttl time.Duration, jti string) (string, error) {
	var (
		method jwt.SigningMethod
		key    any
		iss    string
	)
	switch alg {
	case algHS256:
		method, key, iss = jwt.SigningMethodHS256, k.hmacSecret, issuerHS256
	case algEdDSA:
		method, key, iss = jwt.SigningMethodEdDSA, k.edPrivate, issuerEdDSA
	default:
		return "", fmt.Errorf("jwt: no bench issuer for algorithm %q", alg)
	}
	claims := jwt.MapClaims{
		"iss":   iss,
		"sub":   "bench",
		"aud":   benchAudience,
		"scope": benchScope,
		"iat":   now.Unix(),
		"exp":   now.Add(ttl).Unix(),
	}
	if jti != "" {
		claims["jti"] = jti
	}
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("jwt: sign %s: %w", alg, err)
	}
	return tok, nil
}

// tokenTTL is how long the run's tokens live: the planned load on every target plus an
// hour, so no token expires mid-run (which would turn a row into 401s).
func tokenTTL(o options, targets int) time.Duration {
	return time.Hour + time.Duration(targets)*(o.warmup+time.Duration(o.rounds)*o.duration)
}
