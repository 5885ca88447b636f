package issuer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store/redistest"
)

const testGrace = 5 * time.Second

// graceImpl is a RefreshStore with a reuse grace, its clock, and (Redis) a dump of every
// stored value.
type graceImpl struct {
	name string
	new  func(t *testing.T) (RefreshStore, *clocktest.Clock, func() string)
}

// graceImpls returns the memory and the Redis implementation with a reuse grace of testGrace.
func graceImpls(t *testing.T) []graceImpl {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var n int
	return []graceImpl{
		{"memory", func(t *testing.T) (RefreshStore, *clocktest.Clock, func() string) {
			clk := clocktest.New(t0)
			return NewMemRefreshStore(clk.Now).WithReuseGrace(testGrace), clk, nil
		}},
		{"redis", func(t *testing.T) (RefreshStore, *clocktest.Clock, func() string) {
			n++
			prefix := fmt.Sprintf("g%d:", n)
			clk := clocktest.New(time.Now())
			dump := func() string {
				var b strings.Builder
				keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if typ, _ := rdb.Type(context.Background(), k).Result(); typ != "hash" {
						continue
					}
					h, err := rdb.HGetAll(context.Background(), k).Result()
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintln(&b, k, h)
				}
				return b.String()
			}
			return NewRedisRefreshStore(rdb, prefix, clk.Now).WithReuseGrace(testGrace), clk, dump
		}},
	}
}

// TestFaultAlso3_RefreshRaceWithinGrace: a spent refresh token exchanged again within the
// grace (two tabs racing one refresh) succeeds and returns the same successor, with its
// expiry and the family's session epoch; the family is not revoked. The successor is
// stored only sealed, never in the clear.
func TestFaultAlso3_RefreshRaceWithinGrace(t *testing.T) {
	for _, impl := range graceImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			s, clk, dump := impl.new(t)
			sess, err := s.IssueSession(t.Context(), "usr_1", 7, refreshTTL)
			if err != nil {
				t.Fatal(err)
			}
			r1 := rotate(t, s, sess.Token)
			clk.Advance(testGrace - time.Millisecond)
			r2 := rotate(t, s, sess.Token)
			if r2.Token != r1.Token || r2.Family != r1.Family || r2.UserID != "usr_1" || !r2.ExpiresAt.Equal(r1.ExpiresAt) {
				t.Fatalf("second exchange = %v, want the first's successor %v", r2, r1)
			}
			if !r2.HasEpoch || r2.Epoch != 7 {
				t.Errorf("second exchange epoch = %d (%v), want the family's 7", r2.Epoch, r2.HasEpoch)
			}
			if dump != nil {
				if d := dump(); strings.Contains(d, r1.Token) || strings.Contains(d, sess.Token) {
					t.Errorf("a refresh token is stored in the clear: %s", d)
				}
			}
			// The family goes on: the successor rotates, and the chain continues.
			r3 := rotate(t, s, r1.Token)
			if r3.Family != r1.Family {
				t.Errorf("successor rotated into family %s, want %s", r3.Family, r1.Family)
			}
			rotate(t, s, r3.Token)
		})
		t.Run(impl.name+"/concurrent", func(t *testing.T) {
			s, _, _ := impl.new(t)
			for range 5 {
				tok := issue(t, s, "usr_1")
				var (
					wg   sync.WaitGroup
					res  [10]Rotated
					errs [10]error
				)
				start := make(chan struct{})
				for i := range res {
					wg.Go(func() {
						<-start
						res[i], errs[i] = s.Rotate(context.Background(), tok, refreshTTL)
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("exchange %d: %v, want all to succeed within the grace", i, err)
					}
					if res[i].Token != res[0].Token || res[i].Family != res[0].Family {
						t.Fatalf("exchange %d gave %v, exchange 0 %v: want one chain", i, res[i], res[0])
					}
				}
				rotate(t, s, res[0].Token) // the one successor is live
			}
		})
	}
}

// TestFaultAlso3_ReuseAfterGraceRevokesFamily: once the grace has passed, a spent token
// coming back is a reuse: ErrReused naming the family, and the family is revoked (its
// newest token too). With a grace of 0 even an immediate second exchange is a reuse.
func TestFaultAlso3_ReuseAfterGraceRevokesFamily(t *testing.T) {
	for _, impl := range graceImpls(t) {
		t.Run(impl.name, func(t *testing.T) {
			s, clk, dump := impl.new(t)
			tok := issue(t, s, "usr_1")
			other := issue(t, s, "usr_1")
			r1 := rotate(t, s, tok)
			clk.Advance(testGrace)
			got, err := s.Rotate(t.Context(), tok, refreshTTL)
			if err != ErrReused || got.Family != r1.Family || got.UserID != "usr_1" || got.Token != "" {
				t.Fatalf("reuse after the grace = %v, %v; want ErrReused naming family %s, no token", got, err, r1.Family)
			}
			wantRotateErr(t, s, r1.Token, ErrRefreshRevoked)
			wantRotateErr(t, s, tok, ErrRefreshRevoked)
			if dump != nil {
				if d := dump(); strings.Contains(d, " n:") {
					t.Errorf("the sealed successor outlived the reuse: %s", d)
				}
			}
			rotate(t, s, other) // another family of the same user is untouched
		})
	}
	t.Run("grace 0", func(t *testing.T) {
		s := NewMemRefreshStore(clocktest.New(t0).Now).WithReuseGrace(0)
		tok := issue(t, s, "usr_1")
		r1 := rotate(t, s, tok)
		wantRotateErr(t, s, tok, ErrReused)
		wantRotateErr(t, s, r1.Token, ErrRefreshRevoked)
	})
}
