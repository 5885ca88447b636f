package issuer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/randid"
)

// Errors returned by a RefreshStore.
var (
	// ErrRefreshInvalid means the refresh token is malformed, unknown, expired, or not the
	// caller's.
	ErrRefreshInvalid = errors.New("issuer: invalid refresh token")
	// ErrRefreshRevoked means the token's family has been revoked (logout, reuse, or a
	// change to the user).
	ErrRefreshRevoked = errors.New("issuer: refresh token revoked")
	// ErrReused means the token had already been rotated: it was probably stolen, so its
	// whole family has been revoked.
	ErrReused = errors.New("issuer: refresh token reused")
)

// Refresh token form: "rt_" and 43 base62 characters (about 256 bits).
const (
	refreshPrefix = "rt_"
	refreshChars  = 43
	familyPrefix  = "fam_"
	familyChars   = 22
)

// RefreshStore keeps refresh tokens: opaque, stored only as SHA-256 hashes, rotated on use
// and grouped in families, so that reusing a rotated token revokes the whole family (OAuth
// 2.0 Security BCP, refresh token rotation). Implementations are safe for concurrent use.
type RefreshStore interface {
	// Issue starts a new family for userID and returns its first token.
	Issue(ctx context.Context, userID string, ttl time.Duration) (token string, exp time.Time, err error)
	// IssueSession is Issue that also returns the family id, which access tokens carry
	// as their session (sid), so logout can end the family with the access token alone.
	// The family keeps epoch, the user's session epoch when it began (the login read it
	// with the password it checked); Rotate returns it.
	IssueSession(ctx context.Context, userID string, epoch int64, ttl time.Duration) (Rotated, error)
	// RevokeSession revokes family, when it belongs to userID (else ErrRefreshInvalid).
	RevokeSession(ctx context.Context, userID, family string) error
	// Rotate spends token and returns the next one of its family (new expiry = now + ttl).
	// A token used before: ErrReused, and the family is revoked at once (so its newest token
	// fails too); the Rotated returned with it names the user and the family (no token), so
	// the caller can refuse the family's access tokens as well. Within the store's reuse
	// grace after the token was first spent (two tabs racing one refresh), a reuse is no
	// error: it returns the same successor the first use returned, so the family stays one
	// chain.
	// Unknown or expired: ErrRefreshInvalid. Family revoked: ErrRefreshRevoked.
	Rotate(ctx context.Context, token string, ttl time.Duration) (Rotated, error)
	// RevokeFamily revokes the family of token, when token belongs to userID (else ErrRefreshInvalid).
	RevokeFamily(ctx context.Context, userID, token string) error
	// RevokeUser revokes every family of userID (disable, delete, password change).
	RevokeUser(ctx context.Context, userID string) error
}

// Rotated is the result of a successful Rotate: the next token of the family.
type Rotated struct {
	UserID, Family string
	// Token is the new refresh token, to hand to the client once.
	Token string
	// ExpiresAt is when Token expires (millisecond resolution).
	ExpiresAt time.Time
	// Epoch is the user's session epoch when the family began, if HasEpoch (families
	// stored before it was recorded have none). A family whose epoch is no longer its
	// user's must not mint tokens of the new epoch: the user's sessions ended after it
	// began, perhaps while this rotation ran.
	Epoch    int64
	HasEpoch bool
}

// String describes r without its token.
func (r Rotated) String() string {
	return fmt.Sprintf("issuer.Rotated{UserID: %q, Family: %q, ExpiresAt: %s}", r.UserID, r.Family, r.ExpiresAt.Format(time.RFC3339))
}

// successorInfo labels the key that seals a spent token's successor.
const successorInfo = "authgate refresh successor v1"

// sealSuccessor encrypts next (AES-256-GCM) under a key derived from the spent token it
// replaces, so that the stored successor is of no use without the spent token itself, which
// is stored only as a hash. Only a holder of the spent token, who may exchange it again
// within the reuse grace anyway, can open it.
func sealSuccessor(spent, next string) (string, error) {
	aead, err := successorAEAD(spent)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("issuer: seal successor: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(next), []byte(hashRefresh(spent)))), nil
}

// openSuccessor reverses sealSuccessor.
func openSuccessor(spent, sealed string) (string, error) {
	aead, err := successorAEAD(spent)
	if err != nil {
		return "", err
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("issuer: open successor: malformed record")
	}
	next, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(hashRefresh(spent)))
	if err != nil {
		return "", fmt.Errorf("issuer: open successor: %w", err)
	}
	return string(next), nil
}

// successorAEAD returns the AES-GCM cipher keyed by HKDF-SHA256 of the spent token.
func successorAEAD(spent string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(spent), nil, successorInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("issuer: successor key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("issuer: successor key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("issuer: successor key: %w", err)
	}
	return aead, nil
}

// newRefreshToken returns a new refresh token and its hash.
func newRefreshToken() (token, hash string) {
	token = randid.New(refreshPrefix, refreshChars)
	return token, hashRefresh(token)
}

// newFamilyID returns a new family ID.
func newFamilyID() string { return randid.New(familyPrefix, familyChars) }

// hashRefresh returns the hex SHA-256 of a refresh token, the only form that is stored.
func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validRefreshForm reports whether token has the refresh-token form, so that a made-up
// value is refused without a store round trip.
func validRefreshForm(token string) bool {
	rest, ok := strings.CutPrefix(token, refreshPrefix)
	if !ok || len(rest) != refreshChars {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// checkIssue validates the arguments of Issue.
func checkIssue(userID string, ttl time.Duration) error {
	if userID == "" {
		return errors.New("issuer: refresh issue: empty user ID")
	}
	return checkTTL("issue", ttl)
}

// checkTTL refuses a refresh TTL that would create an already-expired token.
func checkTTL(op string, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("issuer: refresh %s: ttl must be >= 1ms, got %s", op, ttl)
	}
	return nil
}
