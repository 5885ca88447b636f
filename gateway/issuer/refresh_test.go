package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store/redistest"
)

const refreshTTL = time.Hour

// refreshImpl makes a fresh, empty RefreshStore and its clock.
type refreshImpl struct {
	name string
	new  func(t *testing.T) (RefreshStore, *clocktest.Clock)
}

// refreshImpls returns the memory and the Redis implementation. The Redis clock starts at
// the real time, because keys also expire in Redis by PEXPIREAT.
func refreshImpls(t *testing.T) []refreshImpl {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var n int
	return []refreshImpl{
		{"memory", func(t *testing.T) (RefreshStore, *clocktest.Clock) {
			clk := clocktest.New(t0)
			return NewMemRefreshStore(clk.Now), clk
		}},
		{"redis", func(t *testing.T) (RefreshStore, *clocktest.Clock) {
			n++
			clk := clocktest.New(time.Now())
			return NewRedisRefreshStore(rdb, fmt.Sprintf("t%d:", n), clk.Now), clk
		}},
	}
}

// issue issues a token for user or fails the test.
func issue(t *testing.T, s RefreshStore, user string) string {
	t.Helper()
	tok, _, err := s.Issue(t.Context(), user, refreshTTL)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// rotate rotates tok or fails the test.
func rotate(t *testing.T, s RefreshStore, tok string) Rotated {
	t.Helper()
	r, err := s.Rotate(t.Context(), tok, refreshTTL)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return r
}

// wantRotateErr fails unless rotating tok fails with want.
func wantRotateErr(t *testing.T, s RefreshStore, tok string, want error) {
	t.Helper()
	if _, err := s.Rotate(t.Context(), tok, refreshTTL); !errors.Is(err, want) {
		t.Fatalf("Rotate = %v, want %v", err, want)
	}
}

func TestRefreshStores(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s RefreshStore, clk *clocktest.Clock)
	}{
		{"issue and rotate", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			tok, exp, err := s.Issue(t.Context(), "usr_1", refreshTTL)
			if err != nil {
				t.Fatal(err)
			}
			if !validRefreshForm(tok) {
				t.Errorf("token %q does not have the rt_ form", tok)
			}
			if want := expiry(clk.Now(), refreshTTL); !exp.Equal(want) {
				t.Errorf("Issue exp = %s, want %s", exp, want)
			}
			clk.Advance(10 * time.Minute)
			r := rotate(t, s, tok)
			if r.UserID != "usr_1" || !strings.HasPrefix(r.Family, "fam_") || !validRefreshForm(r.Token) || r.Token == tok {
				t.Errorf("Rotate = %v, want usr_1, a fam_ family and a new token", r)
			}
			if want := expiry(clk.Now(), refreshTTL); !r.ExpiresAt.Equal(want) {
				t.Errorf("Rotate ExpiresAt = %s, want %s", r.ExpiresAt, want)
			}
			r2 := rotate(t, s, r.Token)
			if r2.Family != r.Family || r2.UserID != "usr_1" {
				t.Errorf("second Rotate = %v, want family %s of usr_1", r2, r.Family)
			}
		}},
		{"reuse revokes the family", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			t1 := issue(t, s, "usr_1")
			other := issue(t, s, "usr_1")
			t2 := rotate(t, s, t1).Token
			wantRotateErr(t, s, t1, ErrReused)
			wantRotateErr(t, s, t2, ErrRefreshRevoked)
			wantRotateErr(t, s, t1, ErrRefreshRevoked)
			rotate(t, s, other) // another family of the same user is untouched
		}},
		{"unknown and malformed tokens", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			issue(t, s, "usr_1")
			for _, tok := range malformedRefresh() {
				wantRotateErr(t, s, tok, ErrRefreshInvalid)
				if err := s.RevokeFamily(t.Context(), "usr_1", tok); !errors.Is(err, ErrRefreshInvalid) {
					t.Errorf("RevokeFamily(%q) = %v, want ErrRefreshInvalid", tok, err)
				}
			}
		}},
		{"expiry", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			t1 := issue(t, s, "usr_1")
			t2 := issue(t, s, "usr_1")
			clk.Advance(refreshTTL - time.Millisecond)
			rotate(t, s, t1)
			clk.Advance(time.Millisecond)
			wantRotateErr(t, s, t2, ErrRefreshInvalid)
			if err := s.RevokeFamily(t.Context(), "usr_1", t2); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("RevokeFamily of an expired token = %v, want ErrRefreshInvalid", err)
			}
		}},
		{"a spent token is remembered until its own expiry", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			t1 := issue(t, s, "usr_1")
			clk.Advance(10 * time.Minute)
			t2 := rotate(t, s, t1).Token // t2 lives until 70 min
			clk.Advance(50 * time.Minute)
			t3 := rotate(t, s, t2).Token // at 60 min: family now lives until 120 min
			clk.Advance(time.Minute)     // 61 min: t1 has expired, so its reuse is unknown
			wantRotateErr(t, s, t1, ErrRefreshInvalid)
			clk.Advance(8 * time.Minute) // 69 min: t2 is spent but not expired
			wantRotateErr(t, s, t2, ErrReused)
			wantRotateErr(t, s, t3, ErrRefreshRevoked)
		}},
		{"the family outlives its first token", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			tok := issue(t, s, "usr_1")
			for range 5 { // 5 × 50 min: well past the first token's hour
				clk.Advance(50 * time.Minute)
				tok = rotate(t, s, tok).Token
			}
		}},
		{"revoke family", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			t1 := issue(t, s, "usr_1")
			other := issue(t, s, "usr_1")
			if err := s.RevokeFamily(t.Context(), "usr_2", t1); !errors.Is(err, ErrRefreshInvalid) {
				t.Fatalf("RevokeFamily by another user = %v, want ErrRefreshInvalid", err)
			}
			t2 := rotate(t, s, t1).Token // not revoked by the refused call
			// Logout with the spent token revokes the family too.
			if err := s.RevokeFamily(t.Context(), "usr_1", t1); err != nil {
				t.Fatalf("RevokeFamily: %v", err)
			}
			wantRotateErr(t, s, t2, ErrRefreshRevoked)
			if err := s.RevokeFamily(t.Context(), "usr_1", t2); err != nil {
				t.Errorf("RevokeFamily of a revoked family = %v, want nil", err)
			}
			rotate(t, s, other)
		}},
		{"revoke user", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			a := issue(t, s, "usr_1")
			b := rotate(t, s, issue(t, s, "usr_1")).Token
			c := issue(t, s, "usr_2")
			if err := s.RevokeUser(t.Context(), "usr_1"); err != nil {
				t.Fatalf("RevokeUser: %v", err)
			}
			wantRotateErr(t, s, a, ErrRefreshRevoked)
			wantRotateErr(t, s, b, ErrRefreshRevoked)
			rotate(t, s, c)
			if err := s.RevokeUser(t.Context(), "usr_nobody"); err != nil {
				t.Errorf("RevokeUser of an unknown user = %v, want nil", err)
			}
			d := issue(t, s, "usr_1") // a login after the revocation works
			rotate(t, s, d)
		}},
		{"concurrent rotation of one token", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			for range 20 {
				tok := issue(t, s, "usr_1")
				var (
					wg   sync.WaitGroup
					res  [2]Rotated
					errs [2]error
				)
				start := make(chan struct{})
				for i := range 2 {
					wg.Go(func() {
						<-start
						res[i], errs[i] = s.Rotate(context.Background(), tok, refreshTTL)
					})
				}
				close(start)
				wg.Wait()
				ok, reused := -1, -1
				for i, err := range errs {
					switch {
					case err == nil:
						ok = i
					case errors.Is(err, ErrReused):
						reused = i
					default:
						t.Fatalf("Rotate = %v, want nil or ErrReused", err)
					}
				}
				if ok < 0 || reused < 0 {
					t.Fatalf("Rotate results %v, want one success and one ErrReused", errs)
				}
				wantRotateErr(t, s, res[ok].Token, ErrRefreshRevoked)
			}
		}},
		{"bad arguments", func(t *testing.T, s RefreshStore, clk *clocktest.Clock) {
			if _, _, err := s.Issue(t.Context(), "", refreshTTL); err == nil {
				t.Error("Issue with an empty user: no error")
			}
			if _, _, err := s.Issue(t.Context(), "usr_1", 0); err == nil {
				t.Error("Issue with ttl 0: no error")
			}
			tok := issue(t, s, "usr_1")
			if _, err := s.Rotate(t.Context(), tok, 0); err == nil || errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("Rotate with ttl 0 = %v, want an argument error", err)
			}
			rotate(t, s, tok) // still unspent
		}},
	}
	for _, impl := range refreshImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, clk := impl.new(t)
					tt.run(t, s, clk)
				})
			}
		})
	}
}

// malformedRefresh returns values that must be refused by form alone.
func malformedRefresh() []string {
	valid := "rt_" + strings.Repeat("A", refreshChars)
	return []string{
		"", "rt_", valid[:len(valid)-1], valid + "A", "RT_" + valid[3:], "xx_" + valid[3:],
		valid[:10] + "-" + valid[11:], valid[:10] + "é" + valid[12:], valid[:10] + " " + valid[11:],
		valid, // well formed but never issued
	}
}

func TestRedisRefreshMalformedSkipsRedis(t *testing.T) {
	// A client of a port nothing listens on: any command fails.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	s := NewRedisRefreshStore(rdb, "authgate:", nil)
	for _, tok := range malformedRefresh()[:9] {
		if _, err := s.Rotate(t.Context(), tok, refreshTTL); err != ErrRefreshInvalid {
			t.Errorf("Rotate(%q) = %v, want exactly ErrRefreshInvalid", tok, err)
		}
		if err := s.RevokeFamily(t.Context(), "usr_1", tok); err != ErrRefreshInvalid {
			t.Errorf("RevokeFamily(%q) = %v, want exactly ErrRefreshInvalid", tok, err)
		}
	}
	// A well-formed token needs Redis, and an outage is not "invalid".
	if _, err := s.Rotate(t.Context(), malformedRefresh()[9], refreshTTL); err == nil || errors.Is(err, ErrRefreshInvalid) {
		t.Errorf("Rotate with Redis down = %v, want a store error", err)
	}
	if _, _, err := s.Issue(t.Context(), "usr_1", refreshTTL); err == nil {
		t.Error("Issue with Redis down: no error")
	}
	if err := s.RevokeUser(t.Context(), "usr_1"); err == nil {
		t.Error("RevokeUser with Redis down: no error")
	}
}

func TestRedisRefreshKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := t.Context()
	clk := clocktest.New(time.Now())
	s := NewRedisRefreshStore(rdb, "authgate:", clk.Now)
	t1, exp1, err := s.Issue(ctx, "usr_1", refreshTTL)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	r := rotate(t, s, t1)

	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"authgate:{refresh}:tok:" + hashRefresh(t1):      exp1,
		"authgate:{refresh}:tok:" + hashRefresh(r.Token): r.ExpiresAt,
		"authgate:{refresh}:fam:" + r.Family:             r.ExpiresAt,
		"authgate:{refresh}:user:usr_1":                  r.ExpiresAt,
	}
	if len(keys) != len(want) {
		t.Errorf("Redis holds %v, want the %d keys %v", keys, len(want), want)
	}
	for k, exp := range want {
		got, err := rdb.PExpireTime(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != time.Duration(exp.UnixMilli())*time.Millisecond {
			t.Errorf("PEXPIRETIME %s = %d ms, want %d", k, got.Milliseconds(), exp.UnixMilli())
		}
	}
	for _, k := range keys {
		if strings.Contains(k, t1) || strings.Contains(k, r.Token) || strings.Contains(k, t1[3:]) {
			t.Errorf("key %s contains a token", k)
		}
	}
	// The revoke script reports live families it was not told about, so RevokeUser can go
	// back for families issued while it ran.
	missed, err := s.revoke.Run(ctx, rdb, []string{"authgate:{refresh}:user:usr_1"}, clk.Now().UnixMilli()).StringSlice()
	if err != nil || len(missed) != 1 || missed[0] != r.Family {
		t.Errorf("revoke script with no families = %v, %v; want [%s]", missed, err, r.Family)
	}
	// A spent record is kept, marked used.
	if got, err := rdb.HGet(ctx, "authgate:{refresh}:tok:"+hashRefresh(t1), "s").Result(); err != nil || got != "1" {
		t.Errorf("spent token record s = %q, %v; want \"1\"", got, err)
	}
}

// TestRefreshSessions: IssueSession names the family and its epoch, Rotate keeps both, and RevokeSession
// ends it for its own user only (logout with the access token's sid).
func TestRefreshSessions(t *testing.T) {
	for _, impl := range refreshImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			s, _ := impl.new(t)
			sess, err := s.IssueSession(t.Context(), "usr_1", 0, refreshTTL)
			if err != nil || sess.Token == "" || !strings.HasPrefix(sess.Family, familyPrefix) || sess.UserID != "usr_1" {
				t.Fatalf("IssueSession: %+v, %v", sess, err)
			}
			next := rotate(t, s, sess.Token)
			if next.Family != sess.Family {
				t.Fatalf("rotation changed the family: %s -> %s", sess.Family, next.Family)
			}
			if !next.HasEpoch || next.Epoch != 0 {
				t.Errorf("rotation: epoch %d (known %v), want the family's 0", next.Epoch, next.HasEpoch)
			}
			other, err := s.IssueSession(t.Context(), "usr_1", 7, refreshTTL)
			if err != nil {
				t.Fatal(err)
			}
			if o := rotate(t, s, other.Token); !o.HasEpoch || o.Epoch != 7 {
				t.Errorf("rotation: epoch %d (known %v), want the family's 7", o.Epoch, o.HasEpoch)
			} else {
				other = o
			}
			if err := s.RevokeSession(t.Context(), "usr_2", sess.Family); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("another user's session: %v, want ErrRefreshInvalid", err)
			}
			if err := s.RevokeSession(t.Context(), "usr_1", "fam_nonsense"); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("unknown session: %v, want ErrRefreshInvalid", err)
			}
			newest, err := s.Rotate(t.Context(), next.Token, refreshTTL)
			if err != nil {
				t.Fatalf("the family is alive before RevokeSession: %v", err)
			}
			if err := s.RevokeSession(t.Context(), "usr_1", sess.Family); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
			if _, err := s.Rotate(t.Context(), newest.Token, refreshTTL); !errors.Is(err, ErrRefreshRevoked) {
				t.Errorf("the revoked family's newest token: %v, want ErrRefreshRevoked", err)
			}
			// The user's other session is untouched.
			latest, _ := s.Rotate(t.Context(), other.Token, refreshTTL)
			if latest.Token == "" {
				t.Errorf("the other session ended too")
			}
		})
	}
}
