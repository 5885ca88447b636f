package issuer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authgate/authgate/gateway/store"
)

// Errors returned by TOTPChecker.Check.
var (
	// ErrTOTPInvalid means the code is malformed or matches none of the accepted steps.
	ErrTOTPInvalid = errors.New("issuer: invalid TOTP code")
	// ErrTOTPReplayed means the code was right but its step was already used by the user.
	ErrTOTPReplayed = errors.New("issuer: TOTP code already used")
)

const (
	// totpPeriod is the length of a TOTP step.
	totpPeriod = 30
	// totpGuard is how long an accepted step is remembered: a step's code is accepted for
	// 90 s (the step and one either side), so 2 min covers it with room for clock skew.
	totpGuard = 2 * time.Minute
	// totpGuardPrefix starts the store key of an accepted step.
	totpGuardPrefix = "totp:"
)

// totpOptions returns the parameters every authenticator app supports: SHA-1, 6 digits, 30 s.
func totpOptions() totp.ValidateOpts {
	return totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// NewTOTPSecret returns a new TOTP secret (160 random bits, base32) for accountEmail and the
// otpauth:// URL that an authenticator app reads, labelled with issuerName.
func NewTOTPSecret(issuerName, accountEmail string) (secret, otpauthURL string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuerName,
		AccountName: accountEmail,
		Period:      totpPeriod,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("issuer: new TOTP secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// TOTPChecker checks TOTP codes and refuses a code whose step was already accepted for the
// same user, on every replica that shares its store. It is safe for concurrent use.
type TOTPChecker struct {
	st  store.Store
	now func() time.Time
}

// NewTOTPChecker returns a TOTPChecker that remembers accepted steps in st; a nil now
// means time.Now.
func NewTOTPChecker(st store.Store, now func() time.Time) *TOTPChecker {
	if now == nil {
		now = time.Now
	}
	return &TOTPChecker{st: st, now: now}
}

// Check accepts the code for the current 30 s step or one step either side; a code (step) already
// accepted for userID is refused with ErrTOTPReplayed (guard: SetNX of "totp:<user>:<step>" for 2 min).
// Wrong code: ErrTOTPInvalid. Codes must be exactly 6 ASCII digits.
func (c *TOTPChecker) Check(ctx context.Context, userID, secret, code string) error {
	if !sixDigits(code) {
		return ErrTOTPInvalid
	}
	opts := totpOptions()
	now := c.now().Unix() / totpPeriod
	step, found := int64(0), false
	for _, s := range []int64{now, now - 1, now + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), opts)
		if err != nil {
			// The otp error says the secret is not valid base32; it never echoes it.
			return fmt.Errorf("issuer: totp check: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			step, found = s, true
		}
	}
	if !found {
		return ErrTOTPInvalid
	}
	key := totpGuardPrefix + userID + ":" + strconv.FormatInt(step, 10)
	fresh, err := c.st.SetNX(ctx, key, []byte{'1'}, totpGuard)
	if err != nil {
		return fmt.Errorf("issuer: totp check: %w", err)
	}
	if !fresh {
		return ErrTOTPReplayed
	}
	return nil
}

// sixDigits reports whether code is exactly six ASCII digits.
func sixDigits(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}
