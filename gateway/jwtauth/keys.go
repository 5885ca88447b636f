package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// fits reports whether key may verify a token signed with alg. It is the key functions'
// guard against algorithm confusion: an HMAC secret is never a public key's bytes, and a
// public key only verifies the algorithm family (and curve) it belongs to.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256":
			return k.N != nil && k.N.BitLen() >= minRSABits
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize
	}
	return false
}

// normalize returns key in the form jwt/v5 verifies with, or an error for unsupported keys.
func normalize(key crypto.PublicKey) (any, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("rsa key shorter than %d bits", minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("unsupported ecdsa curve")
		}
		return k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("bad ed25519 key size")
		}
		return k, nil
	case *ed25519.PublicKey:
		if k == nil {
			return nil, fmt.Errorf("nil ed25519 key")
		}
		return normalize(*k)
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

// candidates returns what a key function hands jwt/v5 for keys: nothing, the single key,
// or a jwt.VerificationKeySet tried in turn. It is built once, so returning it does not
// allocate.
func candidates(keys []any) any {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		return keys[0]
	default:
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = k
		}
		return set
	}
}

// hmacKey is the key function of an HMAC issuer.
type hmacKey struct{ secret []byte }

func (h hmacKey) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
		return nil, keyErrorf(ErrAlgorithm, "%s on an hmac issuer", t.Method.Alg())
	}
	return h.secret, nil
}

// staticKeys is the key function of an issuer with configured public keys.
type staticKeys struct {
	byKID     map[string]any
	anonymous map[string]any // alg -> candidates among PublicKeys
	all       map[string]any // alg -> candidates among PublicKeys and Keys
}

// newStaticKeys checks and indexes the keys; every pinned algorithm must have a key.
func newStaticKeys(c IssuerConfig) (*staticKeys, error) {
	s := &staticKeys{byKID: map[string]any{}, anonymous: map[string]any{}, all: map[string]any{}}
	var anon, named []any
	for i, k := range c.PublicKeys {
		nk, err := normalize(k)
		if err != nil {
			return nil, fmt.Errorf("public key %d: %w", i, err)
		}
		anon = append(anon, nk)
	}
	for kid, k := range c.Keys {
		nk, err := normalize(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", kid, err)
		}
		s.byKID[kid] = nk
		named = append(named, nk)
	}
	for _, alg := range c.Algorithms {
		var a, all []any
		for _, k := range anon {
			if fits(alg, k) {
				a = append(a, k)
			}
		}
		all = append(all, a...)
		for _, k := range named {
			if fits(alg, k) {
				all = append(all, k)
			}
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("algorithm %q: no key of that type", alg)
		}
		if len(a) > 0 {
			s.anonymous[alg] = candidates(a)
		}
		s.all[alg] = candidates(all)
	}
	return s, nil
}

func (s *staticKeys) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKID, err := headerKID(t)
	if err != nil {
		return nil, err
	}
	if !hasKID {
		if c, ok := s.all[alg]; ok {
			return c, nil
		}
		return nil, keyErrorf(ErrAlgorithm, "no key for %s", alg)
	}
	if k, ok := s.byKID[kid]; ok {
		if !fits(alg, k) {
			return nil, keyErrorf(ErrAlgorithm, "key %.64q does not fit %s", kid, alg)
		}
		return k, nil
	}
	if c, ok := s.anonymous[alg]; ok {
		return c, nil
	}
	return nil, keyErrorf(ErrUnknownKey, "kid %.64q", kid)
}

// headerKID returns the token's kid header; a kid that is not a string is malformed.
func headerKID(t *jwt.Token) (kid string, ok bool, err error) {
	v, ok := t.Header["kid"]
	if !ok {
		return "", false, nil
	}
	kid, isString := v.(string)
	if !isString {
		return "", false, keyErrorf(ErrMalformed, "kid is not a string")
	}
	return kid, true, nil
}
