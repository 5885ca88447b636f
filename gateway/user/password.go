package user

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits. The maximum is checked before hashing, so a huge password
// cannot make a request expensive; argon2 itself accepts any length.
const (
	MinPasswordChars = 10   // characters (runes), not bytes
	MaxPasswordBytes = 1024 // bytes
)

// Bounds on the parameters VerifyPassword accepts from a stored string, so that a
// hostile or corrupted hash cannot make one verification allocate gigabytes or run for
// minutes. HashPassword refuses parameters outside them too.
const (
	MaxMemoryKiB = 256 * 1024 // 256 MiB
	MaxTime      = 16
	MaxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

const (
	saltLen = 16 // bytes of salt HashPassword draws from crypto/rand
	keyLen  = 32 // bytes of derived key HashPassword stores
)

// ErrBadHash is returned by VerifyPassword for a stored string that is not an
// argon2id PHC string this package accepts (wrong form, version, or parameters out of
// bounds). It never says anything about the password.
var ErrBadHash = errors.New("user: malformed password hash")

// Params are the argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB. It must be at least 8*Threads and at most
	// MaxMemoryKiB.
	Memory uint32
	// Time is the number of passes over the memory, 1 to MaxTime.
	Time uint32
	// Threads is the degree of parallelism, 1 to MaxThreads.
	Threads uint8
}

// DefaultParams are the parameters new hashes use: 64 MiB, 3 passes, 2 lanes. That is
// above the OWASP minimum for argon2id (19 MiB, t=2, p=1) and takes some tens of
// milliseconds on a current server core. Each login holds 64 MiB for that time, which
// is why login is rate limited. Stored hashes carry their own parameters, so these can
// be raised later without invalidating existing passwords.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

// TestParams are cheap parameters for tests only (1 MiB, one pass, one lane). Never use
// them for real passwords.
var TestParams = Params{Memory: 1024, Time: 1, Threads: 1}

// validate reports parameters outside the accepted bounds.
func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("threads %d: want 1 to %d", p.Threads, MaxThreads)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("time %d: want 1 to %d", p.Time, MaxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemoryKiB:
		return fmt.Errorf("memory %d KiB: want %d to %d", p.Memory, 8*uint32(p.Threads), MaxMemoryKiB)
	}
	return nil
}

// CheckPassword reports whether pw is acceptable as a new password: at least
// MinPasswordChars characters of valid UTF-8 and at most MaxPasswordBytes bytes. The
// error wraps ErrInvalid and never contains the password.
func CheckPassword(pw string) error {
	switch {
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: password: longer than %d bytes", ErrInvalid, MaxPasswordBytes)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: password: not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		return fmt.Errorf("%w: password: shorter than %d characters", ErrInvalid, MinPasswordChars)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw with a fresh 16-byte salt and a 32-byte
// key, in the PHC string form
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>
//
// (salt and hash in unpadded standard base64). It returns an error wrapping ErrInvalid
// for a password CheckPassword refuses or parameters outside the bounds.
func HashPassword(pw string, p Params) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", fmt.Errorf("user: hash password: %w", err)
	}
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("user: hash password: %w: params: %w", ErrInvalid, err)
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand, Go 1.24+)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return encodeHash(p, salt, key), nil
}

func encodeHash(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// b64 decodes unpadded standard base64 and refuses non-canonical encodings.
var b64 = base64.RawStdEncoding.Strict()

// parseHash splits a PHC argon2id string into its parameters, salt and key. It
// accepts only the exact form encodeHash writes, with bounded parameters and lengths.
func parseHash(encoded string) (Params, []byte, []byte, error) {
	var p Params
	// An upper bound on the length of any acceptable string keeps the work of
	// parsing a hostile one small.
	if len(encoded) > 256 {
		return p, nil, nil, ErrBadHash
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrBadHash
	}
	var got [3]uint64
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, ErrBadHash
	}
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return p, nil, nil, ErrBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, ErrBadHash
		}
		got[i] = n
	}
	if got[2] > MaxThreads {
		return p, nil, nil, fmt.Errorf("%w: threads %d", ErrBadHash, got[2])
	}
	p = Params{Memory: uint32(got[0]), Time: uint32(got[1]), Threads: uint8(got[2])}
	if err := p.validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %w", ErrBadHash, err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrBadHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrBadHash)
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches encoded, a string from HashPassword. The
// parameters come from encoded, so hashes made with older parameters keep working.
// The comparison is constant-time. It returns ErrBadHash (ok false) for a malformed
// string or one whose parameters are out of bounds. A password longer than
// MaxPasswordBytes is refused without hashing (ok false, nil error), as VerifyDummy
// does, so that the two take alike time.
func VerifyPassword(encoded, pw string) (ok bool, err error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordBytes {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// Dummy is a stand-in hash to verify against when a login names an unknown email, so
// that an unknown email and a wrong password take alike time and an attacker cannot
// probe which emails exist. Build it with NewDummy; the zero value is not usable. It
// is safe for concurrent use.
type Dummy struct {
	encoded string
}

// NewDummy returns a Dummy that costs what a hash made with p costs to verify. Use the
// parameters new passwords are hashed with. It returns an error wrapping ErrInvalid
// for parameters out of bounds.
func NewDummy(p Params) (Dummy, error) {
	if err := p.validate(); err != nil {
		return Dummy{}, fmt.Errorf("user: dummy: %w: params: %w", ErrInvalid, err)
	}
	// The salt and key need not be secret or random: the result is discarded.
	return Dummy{encoded: encodeHash(p, make([]byte, saltLen), make([]byte, keyLen))}, nil
}

// Encoded is the stand-in hash, for a hasher that verifies against it (it matches no
// password anyone knows; the result is to be discarded).
func (d Dummy) Encoded() string { return d.encoded }

// Verify runs a full verification of pw, through the same code as VerifyPassword,
// and always returns false.
func (d Dummy) Verify(pw string) bool {
	_, _ = VerifyPassword(d.encoded, pw)
	return false
}

// defaultDummy is immutable after initialisation.
var defaultDummy = Dummy{encoded: encodeHash(DefaultParams, make([]byte, saltLen), make([]byte, keyLen))}

// VerifyDummy is Dummy.Verify for DefaultParams: it spends the time of verifying a
// password hashed with DefaultParams and always returns false.
func VerifyDummy(pw string) bool {
	return defaultDummy.Verify(pw)
}
