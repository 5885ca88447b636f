// Package apikey defines API keys: their form, generation, checksum and hashing.
//
// A key reads "<prefix>_<env>_<secret><check>": prefix from config
// (default "sk"), env "live" or "test", secret 30 base62 characters from crypto/rand
// (about 178 bits), check 6 base62 characters of the CRC-32 of everything before it. The
// checksum lets a mistyped or made-up key be refused without touching the store.
package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/authgate/authgate/gateway/randid"
)

const (
	// SecretLen is the number of base62 characters of the random part.
	SecretLen = 30
	// CheckLen is the number of base62 characters of the checksum.
	CheckLen = 6
	// StartLen is how many leading characters lists show to recognise a key.
	StartLen = 12

	base62 = randid.Alphabet
)

// Environments a key can belong to.
const (
	Live = "live"
	Test = "test"
)

// ErrMalformed is returned by Parse for anything that is not a well-formed key of this
// gateway: wrong prefix, environment, length, alphabet or checksum.
var ErrMalformed = errors.New("apikey: malformed key")

// Generate returns a new key for prefix and env. It fails only on a bad env or prefix.
func Generate(prefix, env string) (string, error) {
	if env != Live && env != Test {
		return "", fmt.Errorf("apikey: environment %q: want live or test", env)
	}
	if prefix == "" || strings.Contains(prefix, "_") {
		return "", fmt.Errorf("apikey: prefix %q: want a non-empty prefix without '_'", prefix)
	}
	var b strings.Builder
	b.Grow(len(prefix) + len(env) + 2 + SecretLen + CheckLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(env)
	b.WriteByte('_')
	randid.Append(&b, SecretLen)
	body := b.String()
	return body + checksum(body), nil
}

// Parsed is what Parse learns from a key's form.
type Parsed struct {
	Env   string // "live" or "test"
	Start string // the first StartLen characters, safe to show
}

// Parse checks that key is a well-formed key of this gateway (prefix, environment,
// length, alphabet, checksum) without any store access.
func Parse(key, prefix string) (Parsed, error) {
	rest, ok := strings.CutPrefix(key, prefix+"_")
	if !ok || prefix == "" {
		return Parsed{}, ErrMalformed
	}
	env, rest, ok := strings.Cut(rest, "_")
	if !ok || (env != Live && env != Test) || len(rest) != SecretLen+CheckLen {
		return Parsed{}, ErrMalformed
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return Parsed{}, ErrMalformed
		}
	}
	body := key[:len(key)-CheckLen]
	if checksum(body) != key[len(key)-CheckLen:] { // not secret: a checksum, public by design
		return Parsed{}, ErrMalformed
	}
	return Parsed{Env: env, Start: key[:StartLen]}, nil
}

// checksum is CheckLen base62 digits of the CRC-32 (IEEE) of body.
func checksum(body string) string {
	v := crc32.ChecksumIEEE([]byte(body))
	var out [CheckLen]byte
	for i := CheckLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// Hasher turns a key into the only form that is stored: SHA-256, or HMAC-SHA-256 with a
// pepper kept outside the store, so a leaked store alone cannot be used to check guesses.
// A Hasher is immutable and safe for concurrent use.
type Hasher struct {
	pepper []byte
}

// NewHasher returns a Hasher; an empty pepper means plain SHA-256.
func NewHasher(pepper string) Hasher {
	return Hasher{pepper: []byte(pepper)}
}

// Hash returns the 32-byte digest of key.
func (h Hasher) Hash(key string) [32]byte {
	if len(h.pepper) == 0 {
		return sha256.Sum256([]byte(key))
	}
	m := hmac.New(sha256.New, h.pepper)
	m.Write([]byte(key))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}
