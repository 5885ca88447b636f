// Package user keeps the users of the built-in issuer: their
// email, argon2id password hash, role, organisation, disabled flag and TOTP state, in
// Redis (Store) or in process memory (MemStore), and hashes and verifies passwords.
package user

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/randid"
)

// Sentinel errors of the stores. Compare with errors.Is.
var (
	// ErrNotFound is returned when no user has the given ID or email.
	ErrNotFound = errors.New("user: not found")
	// ErrConflict is returned by Create when the email or the ID is already taken,
	// and by Update when the new email belongs to another user.
	ErrConflict = errors.New("user: conflict")
	// ErrInvalid is returned for a malformed record (bad ID, email, role or
	// organisation, or a password hash that does not parse) or a password that
	// CheckPassword refuses.
	ErrInvalid = errors.New("user: invalid argument")
)

const (
	idPrefix = "usr_"
	// idRandLen is the number of base62 characters after "usr_" (about 119 bits).
	idRandLen = 20
	idLen     = len(idPrefix) + idRandLen
	base62    = randid.Alphabet

	// MaxEmailLen is the longest email accepted, in bytes (RFC 5321's path limit
	// less the angle brackets).
	MaxEmailLen = 254
	// maxFieldLen bounds role and organisation, in bytes.
	maxFieldLen = 256
)

// User is the stored record of a user. PasswordHash and TOTPSecret are never encoded
// to JSON, and String and LogValue leave them out, so handing a User to a response
// or a log cannot leak them; the stores persist them through their own encoding.
type User struct {
	ID           string `json:"id"`
	Email        string `json:"email"` // lower-cased and trimmed by the stores
	PasswordHash string `json:"-"`     // HashPassword's PHC string; empty: no password login
	Role         string `json:"role"`
	Organization string `json:"organization"`
	Disabled     bool   `json:"disabled"`
	TOTPSecret   string `json:"-"`
	MFAEnabled   bool   `json:"mfa_enabled"`
	// Teams are the IDs of the teams the user is a member of, in the order they joined
	// (see Team). Change them with AddMember and RemoveMember, which check the team.
	Teams     []string  `json:"teams"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// SessionEpoch counts the times the user's sessions were ended (disabled, new
	// password, TOTP removed). Access tokens carry the epoch they were minted in; a token
	// of an earlier epoch is refused.
	SessionEpoch int64 `json:"-"`
}

// String describes u without its password hash and TOTP secret.
func (u User) String() string {
	return fmt.Sprintf("user{id=%s email=%s role=%s organization=%s disabled=%t mfa=%t}",
		u.ID, u.Email, u.Role, u.Organization, u.Disabled, u.MFAEnabled)
}

// LogValue logs u without its password hash and TOTP secret.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", u.ID), slog.String("email", u.Email), slog.String("role", u.Role),
		slog.String("organization", u.Organization), slog.Bool("disabled", u.Disabled),
		slog.Bool("mfa_enabled", u.MFAEnabled),
	)
}

// NewID returns a new user ID: "usr_" and 20 base62 characters from crypto/rand.
func NewID() string {
	return randid.New(idPrefix, idRandLen)
}

// validID reports whether id has the form NewID produces.
func validID(id string) bool {
	if len(id) != idLen || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	for i := len(idPrefix); i < len(id); i++ {
		if strings.IndexByte(base62, id[i]) < 0 {
			return false
		}
	}
	return true
}

// NormalizeEmail returns email trimmed of surrounding white space and lower-cased,
// the form the stores keep and look up.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidateEmail checks a normalised email: valid UTF-8, at most MaxEmailLen bytes,
// exactly one '@' with something on both sides, no white space or control
// characters. It is a sanity check, not RFC 5322 parsing. The error wraps ErrInvalid.
func ValidateEmail(email string) error {
	if err := checkEmail(email); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func checkEmail(email string) error {
	var problem string
	switch {
	case email == "":
		problem = "required"
	case len(email) > MaxEmailLen:
		problem = fmt.Sprintf("longer than %d bytes", MaxEmailLen)
	case !utf8.ValidString(email):
		problem = "not valid UTF-8"
	case strings.Count(email, "@") != 1:
		problem = "want exactly one '@'"
	case strings.HasPrefix(email, "@") || strings.HasSuffix(email, "@"):
		problem = "empty local part or domain"
	case strings.IndexFunc(email, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		problem = "contains white space or control characters"
	default:
		return nil
	}
	return errors.New("email: " + problem)
}

// validateField checks role and organisation.
func validateField(name, v string) error {
	if len(v) > maxFieldLen || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s: want valid UTF-8 without NUL, at most %d bytes", name, maxFieldLen)
	}
	return nil
}

// prepare normalises u's email and times and checks it. It returns an error wrapping
// ErrInvalid.
func prepare(u User) (User, error) {
	u.Email = NormalizeEmail(u.Email)
	if u.Teams == nil {
		u.Teams = []string{}
	}
	u.CreatedAt = u.CreatedAt.UTC().Round(0)
	u.UpdatedAt = u.UpdatedAt.UTC().Round(0)
	var errs []error
	if !validID(u.ID) {
		errs = append(errs, fmt.Errorf("id %q: want %q and %d base62 characters", u.ID, idPrefix, idRandLen))
	}
	if err := checkEmail(u.Email); err != nil {
		errs = append(errs, err)
	}
	if err := validateField("role", u.Role); err != nil {
		errs = append(errs, err)
	}
	if err := validateField("organization", u.Organization); err != nil {
		errs = append(errs, err)
	}
	if err := checkTeamList(u.Teams); err != nil {
		errs = append(errs, err)
	}
	if u.PasswordHash != "" {
		if _, _, _, err := parseHash(u.PasswordHash); err != nil {
			errs = append(errs, errors.New("password hash: malformed"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return u, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return u, nil
}

// record is the stored form of a User, secrets included. Only the stores use it.
type record struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Role         string    `json:"role"`
	Organization string    `json:"organization"`
	Disabled     bool      `json:"disabled"`
	TOTPSecret   string    `json:"totp_secret,omitempty"`
	MFAEnabled   bool      `json:"mfa_enabled"`
	Teams        []string  `json:"teams,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	SessionEpoch int64     `json:"session_epoch,omitempty"`
}

func encodeRecord(u User) (string, error) {
	b, err := json.Marshal(record(u))
	if err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	return string(b), nil
}

func decodeRecord(s string) (User, error) {
	var r record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return User{}, fmt.Errorf("decode record: %w", err)
	}
	u := User(r)
	if u.Teams == nil {
		u.Teams = []string{}
	}
	return u, nil
}

// IsID reports whether id has the form of a user ID ("usr_" and 20 base62 characters).
func IsID(id string) bool { return validID(id) }
