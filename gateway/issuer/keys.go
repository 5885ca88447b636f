package issuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/MicahParks/jwkset"
)

// Algorithm names, as they appear in a JWT's alg header and a JWK's alg member.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// pemType is the only PEM block type a key file may hold: a PKCS#8 private key.
const pemType = "PRIVATE KEY"

// KeySet is the issuer's signing keys: the first signs, all verify (so a rotation leaves
// issued tokens valid). A KeySet is immutable once loaded and safe for concurrent use. Its
// zero value holds no keys; use LoadOrCreateKeySet.
type KeySet struct {
	keys     []signingKey // keys[0] signs
	byKID    map[string]*signingKey
	algs     []string
	jwks     []byte
	insecure bool
}

// signingKey is one key of a KeySet.
type signingKey struct {
	kid  string
	alg  string // AlgEdDSA or AlgES256
	priv crypto.Signer
	pub  crypto.PublicKey
}

// String describes k by its key IDs only, never by key material.
func (k *KeySet) String() string {
	if k == nil || len(k.keys) == 0 {
		return "issuer.KeySet{}"
	}
	return fmt.Sprintf("issuer.KeySet{signing: %s, keys: %d}", k.keys[0].kid, len(k.keys))
}

// SigningKID returns the key ID (the RFC 7638 thumbprint) of the key that signs new tokens.
func (k *KeySet) SigningKID() string {
	if len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].kid
}

// Public returns every public key of the set by key ID. The map is a fresh copy.
func (k *KeySet) Public() map[string]crypto.PublicKey {
	m := make(map[string]crypto.PublicKey, len(k.keys))
	for _, sk := range k.keys {
		m[sk.kid] = sk.pub
	}
	return m
}

// Algorithms returns the JWT algorithms of the set's keys ("EdDSA", "ES256"), each once,
// the signing key's first.
func (k *KeySet) Algorithms() []string {
	return append([]string(nil), k.algs...)
}

// JWKS returns the JSON Web Key Set document for GET /.well-known/jwks.json: the public
// parts of every key, with kty, crv, x (and y), kid, alg and use "sig".
func (k *KeySet) JWKS() []byte {
	return bytes.Clone(k.jwks)
}

// Insecure reports whether the key file was readable or writable by group or others when it
// was loaded, so that the caller can warn.
func (k *KeySet) Insecure() bool { return k.insecure }

// signer returns the signing key.
func (k *KeySet) signer() *signingKey {
	if len(k.keys) == 0 {
		return nil
	}
	return &k.keys[0]
}

// lookup returns the key with the given kid.
func (k *KeySet) lookup(kid string) (*signingKey, bool) {
	sk, ok := k.byKID[kid]
	return sk, ok
}

// LoadOrCreateKeySet reads the PEM key file at path. When the file does not exist, it creates
// its directory (mode 0700) and the file (mode 0600) with one new Ed25519 key, and reports
// created. Two processes starting at once end with the same single file: the file is written
// to a temporary file first and then linked into place, and the loser of the race loads the
// winner's file. Errors name the file, never the key.
func LoadOrCreateKeySet(path string) (*KeySet, bool, error) {
	ks, err := loadKeySet(path)
	if err == nil {
		return ks, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("issuer: create key directory for %s: %w", path, err)
	}
	data, err := newEd25519PEM()
	if err != nil {
		return nil, false, fmt.Errorf("issuer: key file %s: %w", path, err)
	}
	created, err := writeNewFile(path, data)
	if err != nil {
		return nil, false, err
	}
	ks, err = loadKeySet(path)
	if err != nil {
		return nil, false, err
	}
	return ks, created, nil
}

// RotateKeyFile puts a new Ed25519 key first in the key file at path, so it signs from the
// next load on, and keeps the old keys so that tokens they signed stay valid. The file is
// replaced atomically (temporary file, fsync, rename) with mode 0600. It returns the new
// key's ID. The file must exist and be valid.
func RotateKeyFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("issuer: rotate key file %s: %w", path, err)
	}
	if _, err := parseKeySet(path, data); err != nil {
		return "", err
	}
	fresh, err := newEd25519PEM()
	if err != nil {
		return "", fmt.Errorf("issuer: rotate key file %s: %w", path, err)
	}
	out := append(fresh, bytes.TrimLeft(data, " \t\r\n")...)
	ks, err := parseKeySet(path, out)
	if err != nil {
		return "", err
	}
	if err := replaceFile(path, out); err != nil {
		return "", err
	}
	return ks.SigningKID(), nil
}

// loadKeySet reads and parses the key file at path. A missing file is an error that
// matches os.ErrNotExist.
func loadKeySet(path string) (*KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("issuer: key file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("issuer: key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("issuer: key file %s: not a regular file", path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("issuer: key file %s: %w", path, err)
	}
	ks, err := parseKeySet(path, buf.Bytes())
	if err != nil {
		return nil, err
	}
	ks.insecure = fi.Mode().Perm()&0o077 != 0
	return ks, nil
}

// parseKeySet parses the contents of the key file at path into a KeySet.
func parseKeySet(path string, data []byte) (*KeySet, error) {
	keys, err := parseKeyFile(path, data)
	if err != nil {
		return nil, err
	}
	return newKeySet(path, keys)
}

// parseKeyFile decodes every PEM block of data. Anything but PKCS#8 Ed25519 or P-256 private
// keys, text before, between or after the blocks, and an empty file are errors naming path.
func parseKeyFile(path string, data []byte) ([]signingKey, error) {
	var keys []signingKey
	rest := data
	for i := 0; ; i++ {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		// pem.Decode skips text before a block; refuse it, as garbage in a key file is
		// more likely a mistake than a comment.
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			if i == 0 {
				return nil, fmt.Errorf("issuer: key file %s: not a PEM file", path)
			}
			return nil, fmt.Errorf("issuer: key file %s: unexpected data after PEM block %d", path, i)
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("issuer: key file %s: PEM block %d is malformed", path, i+1)
		}
		if block.Type != pemType || len(block.Headers) > 0 {
			return nil, fmt.Errorf("issuer: key file %s: PEM block %d: want an unencrypted %q block, got %q", path, i+1, pemType, block.Type)
		}
		sk, err := parsePrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("issuer: key file %s: PEM block %d: %w", path, i+1, err)
		}
		keys = append(keys, sk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("issuer: key file %s: no keys", path)
	}
	return keys, nil
}

// errKeyType is the cause when a PKCS#8 key is neither Ed25519 nor ECDSA P-256.
var errKeyType = errors.New("only Ed25519 and ECDSA P-256 keys are supported")

// parsePrivateKey parses one PKCS#8 DER private key.
func parsePrivateKey(der []byte) (signingKey, error) {
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The x509 error says what failed to parse; it never echoes key bytes.
		return signingKey{}, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	var sk signingKey
	switch key := raw.(type) {
	case ed25519.PrivateKey:
		sk = signingKey{alg: AlgEdDSA, priv: key, pub: key.Public()}
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return signingKey{}, fmt.Errorf("ECDSA curve %s: %w", key.Curve.Params().Name, errKeyType)
		}
		sk = signingKey{alg: AlgES256, priv: key, pub: key.Public()}
	default:
		return signingKey{}, fmt.Errorf("key type %T: %w", raw, errKeyType)
	}
	jwk, err := publicJWK(sk.pub, sk.alg, "")
	if err != nil {
		return signingKey{}, err
	}
	sk.kid = thumbprint(jwk)
	return sk, nil
}

// newKeySet indexes keys and builds the JWKS document.
func newKeySet(path string, keys []signingKey) (*KeySet, error) {
	ks := &KeySet{keys: keys, byKID: make(map[string]*signingKey, len(keys))}
	doc := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	for i := range ks.keys {
		sk := &ks.keys[i]
		if _, dup := ks.byKID[sk.kid]; dup {
			return nil, fmt.Errorf("issuer: key file %s: key %s appears twice", path, sk.kid)
		}
		ks.byKID[sk.kid] = sk
		if !slices.Contains(ks.algs, sk.alg) {
			ks.algs = append(ks.algs, sk.alg)
		}
		jwk, err := publicJWK(sk.pub, sk.alg, sk.kid)
		if err != nil {
			return nil, fmt.Errorf("issuer: key file %s: %w", path, err)
		}
		doc.Keys = append(doc.Keys, jwk)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("issuer: key file %s: encode JWKS: %w", path, err)
	}
	ks.jwks = b
	return ks, nil
}

// publicJWK returns the JWK of a public key, without private members.
func publicJWK(pub crypto.PublicKey, alg, kid string) (jwkset.JWKMarshal, error) {
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), KID: kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("build JWK: %w", err)
	}
	return j.Marshal(), nil
}

// thumbprint returns the RFC 7638 JWK thumbprint of an OKP or EC public JWK: SHA-256 over
// the required members in lexicographic order, without whitespace, base64url without
// padding. The member values are base64url or fixed names, so they need no JSON escaping.
func thumbprint(j jwkset.JWKMarshal) string {
	var canon string
	switch j.KTY {
	case jwkset.KtyEC:
		canon = fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`, j.CRV, j.X, j.Y)
	default: // OKP
		canon = fmt.Sprintf(`{"crv":"%s","kty":"OKP","x":"%s"}`, j.CRV, j.X)
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newEd25519PEM returns a new Ed25519 key as a PKCS#8 PEM block.
func newEd25519PEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode Ed25519 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// CheckKeyFile reports whether the key file at path would load as LoadOrCreateKeySet
// loads it, without creating anything: a file that does not exist yet is no error (it is
// created at start).
func CheckKeyFile(path string) error {
	_, err := loadKeySet(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
