package issuer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
)

func TestNewTOTPSecret(t *testing.T) {
	secret, url, err := NewTOTPSecret("authgate", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 { // 160 bits in base32
		t.Errorf("secret has %d characters, want 32", len(secret))
	}
	key, err := otp.NewKeyFromURL(url)
	if err != nil {
		t.Fatalf("otpauth URL does not parse: %v", err)
	}
	if key.Type() != "totp" || key.Issuer() != "authgate" || key.AccountName() != "alice@example.com" ||
		key.Secret() != secret || key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Errorf("otpauth URL = %s, want totp, authgate, alice@example.com, the secret, 30 s, 6 digits, SHA1", strings.Replace(url, secret, "SECRET", 1))
	}
	other, _, err := NewTOTPSecret("authgate", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Error("two secrets are equal")
	}
}

// codeAt returns the TOTP code of secret at t.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestTOTPChecker(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Date(2030, 1, 2, 3, 4, 15, 0, time.UTC) // 15 s into a step
	step := 30 * time.Second
	current := codeAt(t, secret, now)
	window := map[string]bool{current: true, codeAt(t, secret, now.Add(-step)): true, codeAt(t, secret, now.Add(step)): true}
	wrong := "000000"
	for window[wrong] {
		wrong = string(rune(wrong[0]+1)) + wrong[1:]
	}

	type attempt struct {
		user, code string
		want       error
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"current step", []attempt{{"usr_1", current, nil}}},
		{"previous step", []attempt{{"usr_1", codeAt(t, secret, now.Add(-step)), nil}}},
		{"next step", []attempt{{"usr_1", codeAt(t, secret, now.Add(step)), nil}}},
		{"two steps back", []attempt{{"usr_1", codeAt(t, secret, now.Add(-2*step)), ErrTOTPInvalid}}},
		{"two steps ahead", []attempt{{"usr_1", codeAt(t, secret, now.Add(2*step)), ErrTOTPInvalid}}},
		{"wrong code", []attempt{{"usr_1", wrong, ErrTOTPInvalid}}},
		{"replayed", []attempt{{"usr_1", current, nil}, {"usr_1", current, ErrTOTPReplayed}}},
		{"previous step replayed", []attempt{
			{"usr_1", codeAt(t, secret, now.Add(-step)), nil},
			{"usr_1", codeAt(t, secret, now.Add(-step)), ErrTOTPReplayed},
			{"usr_1", current, nil}, // another step is another code
		}},
		{"same code, another user", []attempt{{"usr_1", current, nil}, {"usr_2", current, nil}}},
		{"wrong code does not burn the step", []attempt{{"usr_1", wrong, ErrTOTPInvalid}, {"usr_1", current, nil}}},
		{"malformed", []attempt{
			{"usr_1", "", ErrTOTPInvalid},
			{"usr_1", current[:5], ErrTOTPInvalid},
			{"usr_1", current + "0", ErrTOTPInvalid},
			{"usr_1", " " + current[1:], ErrTOTPInvalid},
			{"usr_1", current[:5] + "a", ErrTOTPInvalid},
			{"usr_1", "１２３４５６", ErrTOTPInvalid},
			{"usr_1", "-12345", ErrTOTPInvalid},
		}},
	}
	srv := redistest.Start(t)
	stores := []struct {
		name string
		new  func(t *testing.T, clk *clocktest.Clock) store.Store
	}{
		{"memory", func(t *testing.T, clk *clocktest.Clock) store.Store { return store.NewMemory(clk.Now) }},
		{"redis", func(t *testing.T, clk *clocktest.Clock) store.Store {
			return newRedisStore(t, srv, strings.ReplaceAll(t.Name(), "/", ":")+":")
		}},
	}
	for _, sm := range stores {
		t.Run(sm.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					clk := clocktest.New(now)
					c := NewTOTPChecker(sm.new(t, clk), clk.Now)
					for i, a := range tt.attempts {
						if err := c.Check(t.Context(), a.user, secret, a.code); !errors.Is(err, a.want) {
							t.Fatalf("attempt %d (%s, %q): Check = %v, want %v", i, a.user, a.code, err, a.want)
						}
					}
				})
			}
		})
	}
}

func TestTOTPCheckerGuardExpires(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Date(2030, 1, 2, 3, 4, 15, 0, time.UTC)
	clk := clocktest.New(now)
	st := store.NewMemory(clk.Now)
	c := NewTOTPChecker(st, clk.Now)
	code := codeAt(t, secret, now)
	if err := c.Check(t.Context(), "usr_1", secret, code); err != nil {
		t.Fatal(err)
	}
	// The guard lives 2 min, longer than the 90 s a code is accepted for.
	clk.Advance(30 * time.Second) // the code's step is now the previous one
	if err := c.Check(t.Context(), "usr_1", secret, code); !errors.Is(err, ErrTOTPReplayed) {
		t.Errorf("Check 30 s later = %v, want ErrTOTPReplayed", err)
	}
	clk.Advance(30 * time.Second)
	if err := c.Check(t.Context(), "usr_1", secret, code); !errors.Is(err, ErrTOTPInvalid) {
		t.Errorf("Check 60 s later = %v, want ErrTOTPInvalid (out of the window)", err)
	}
}

func TestTOTPCheckerErrors(t *testing.T) {
	clk := clocktest.New(t0)
	st := store.NewMemory(clk.Now)
	c := NewTOTPChecker(st, clk.Now)
	err := c.Check(t.Context(), "usr_1", "not base32 !!", "123456")
	if err == nil || errors.Is(err, ErrTOTPInvalid) || errors.Is(err, ErrTOTPReplayed) {
		t.Errorf("Check with a broken secret = %v, want a non-code error", err)
	}
	if err != nil && strings.Contains(err.Error(), "not base32") {
		t.Errorf("error %q contains the secret", err)
	}
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	st.Close()
	if err := c.Check(t.Context(), "usr_1", secret, codeAt(t, secret, t0)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Check with the store closed = %v, want ErrClosed", err)
	}
}
