package issuer

import (
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// newRedisStore returns a store.Redis on srv with prefix.
func newRedisStore(t *testing.T, srv *redistest.Server, prefix string) *store.Redis {
	t.Helper()
	st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// wantRevoked fails unless Revoked(jti) is want.
func wantRevoked(t *testing.T, r *Revocations, jti string, want bool) {
	t.Helper()
	got, err := r.Revoked(t.Context(), jti)
	if err != nil {
		t.Fatalf("Revoked(%q): %v", jti, err)
	}
	if got != want {
		t.Fatalf("Revoked(%q) = %v, want %v", jti, got, want)
	}
}

func TestRevocationsMemory(t *testing.T) {
	clk := clocktest.New(t0)
	st := store.NewMemory(clk.Now)
	r := NewRevocationsClock(st, clk.Now)
	ctx := t.Context()

	wantRevoked(t, r, "jti_a", false)
	if err := r.Revoke(ctx, "jti_a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r, "jti_a", true)
	wantRevoked(t, r, "jti_b", false)
	wantRevoked(t, r, "", false)

	clk.Advance(time.Hour + time.Minute - time.Millisecond)
	wantRevoked(t, r, "jti_a", true) // kept past exp, for the leeway
	clk.Advance(time.Millisecond)
	wantRevoked(t, r, "jti_a", false) // then forgotten

	// A token already past exp + 1 min needs no record.
	if err := r.Revoke(ctx, "jti_old", clk.Now().Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, revokedPrefix+"jti_old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of a long-expired token: Get = %v, want ErrNotFound", err)
	}
	if err := r.Revoke(ctx, "", t0.Add(time.Hour)); err == nil {
		t.Error("Revoke of an empty jti: no error")
	}

	// A store failure is an error, never "not revoked".
	if err := r.Revoke(ctx, "jti_c", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if got, err := r.Revoked(ctx, "jti_c"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Revoked on a closed store = %v, %v; want ErrClosed", got, err)
	}
	if err := r.Revoke(ctx, "jti_d", clk.Now().Add(time.Hour)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Revoke on a closed store = %v, want ErrClosed", err)
	}
}

func TestRevocationsRedis(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedisStore(t, srv, "authgate:")
	ctx := t.Context()
	now := time.Now()
	r := NewRevocations(st)

	wantRevoked(t, r, "jti_a", false)
	if err := r.Revoke(ctx, "jti_a", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r, "jti_a", true)
	wantRevoked(t, r, "jti_b", false)
	ttl, err := st.Client().PTTL(ctx, st.Key(revokedPrefix+"jti_a")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Hour + time.Minute; ttl > want || ttl < want-10*time.Second {
		t.Errorf("PTTL = %s, want about %s", ttl, want)
	}

	// With a short real TTL the record goes away by itself: exp is 59.7 s ago, so it is
	// kept for 300 ms.
	if err := r.Revoke(ctx, "jti_short", time.Now().Add(-time.Minute+300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		revoked, err := r.Revoked(ctx, "jti_short")
		if err != nil {
			t.Fatal(err)
		}
		if !revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("jti_short still revoked 5 s after its record should have expired")
		}
		time.Sleep(20 * time.Millisecond) // polling with a bound, not synchronisation
	}

	srv.Stop(t)
	if got, err := r.Revoked(ctx, "jti_a"); err == nil {
		t.Errorf("Revoked with Redis down = %v, nil; want an error", got)
	}
}

// TestRevokeSession: a revoked family refuses every token carrying it, whatever its jti,
// until the family's newest token would have expired; other families and tokens without
// one are untouched.
func TestRevokeSession(t *testing.T) {
	srv := redistest.Start(t)
	clk := clocktest.New(t0)
	r := NewRevocationsClock(newRedisStore(t, srv, "rs:"), clk.Now)
	ctx := t.Context()
	if err := r.RevokeSession(ctx, "", t0.Add(time.Hour)); err == nil {
		t.Error("an empty session ID was accepted")
	}
	if err := r.RevokeSession(ctx, "fam_a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		jti, sid string
		want     bool
	}{{"jti_1", "fam_a", true}, {"jti_2", "fam_a", true}, {"jti_3", "fam_b", false}, {"jti_4", "", false}} {
		got, err := r.TokenRevoked(ctx, c.jti, c.sid)
		if err != nil || got != c.want {
			t.Errorf("TokenRevoked(%s, %s) = %v, %v; want %v", c.jti, c.sid, got, err, c.want)
		}
	}
	if err := r.Revoke(ctx, "jti_4", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.TokenRevoked(ctx, "jti_4", ""); err != nil || !got {
		t.Errorf("TokenRevoked by jti = %v, %v; want true", got, err)
	}
	ttl, err := srv.Client(t).PTTL(ctx, "rs:"+revokedSessionPrefix+"fam_a").Result()
	if err != nil || ttl <= 0 || ttl > time.Hour+revokeSlack {
		t.Errorf("TTL of the session's revocation = %v, %v; want within an hour and a minute", ttl, err)
	}
}
