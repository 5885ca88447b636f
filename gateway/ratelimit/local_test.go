package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
)

// TestLocalEvictsLeastRecentlyUsed fills a set of three keys and checks
// that a fourth key evicts the one used longest ago, which then starts
// with a full allowance again.
func TestLocalEvictsLeastRecentlyUsed(t *testing.T) {
	clk := clocktest.New(t0)
	lc := NewLocal(LocalOptions{MaxEntries: 3, Now: clk.Now})
	l := Limit{Requests: 1, Per: time.Hour}
	for _, k := range []string{"a", "b", "c"} {
		mustAllow(t, lc, k, l) // each key is now used up
	}
	mustAllow(t, lc, "a", l) // refused, but a is now the most recent: b is the oldest
	if got := lc.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	mustAllow(t, lc, "d", l) // evicts b
	if got := lc.Len(); got != 3 {
		t.Fatalf("Len after d = %d, want 3", got)
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"a", false}, {"c", false}, {"d", false}, // kept: still used up
		{"b", true}, // evicted: forgotten, so allowed again (this evicts a)
		{"a", true},
	} {
		if got := mustAllow(t, lc, tt.key, l); got.Allowed != tt.want {
			t.Errorf("key %q: Allowed = %v, want %v", tt.key, got.Allowed, tt.want)
		}
	}
}

// TestLocalEvictKeepsUsedUpBucket: when no bucket among the least recently used has
// refilled, the one with the most allowance left goes, not the used-up one behind it, so
// a flood of new keys that each used one request cannot reset a used-up key.
func TestLocalEvictKeepsUsedUpBucket(t *testing.T) {
	clk := clocktest.New(t0)
	lc := NewLocal(LocalOptions{MaxEntries: 4, Now: clk.Now})
	l := Limit{Requests: 3, Per: time.Hour}
	for range 3 {
		mustAllow(t, lc, "target", l) // used up, and the least recently used from now on
	}
	for i := range 100 {
		mustAllow(t, lc, fmt.Sprintf("flood%d", i), l) // two of three left
	}
	if got := mustAllow(t, lc, "target", l); got.Allowed {
		t.Fatalf("target after the flood: %+v, want refused", got)
	}
}

// TestLocalDefaults checks the zero LocalOptions.
func TestLocalDefaults(t *testing.T) {
	lc := NewLocal(LocalOptions{})
	if lc.maxEntries != DefaultMaxEntries || DefaultMaxEntries != 100_000 {
		t.Errorf("maxEntries = %d, want 100000", lc.maxEntries)
	}
	if got := mustAllow(t, lc, "k", Limit{Requests: 3, Per: time.Second}); !got.Allowed || got.Remaining != 2 {
		t.Errorf("got %+v, want allowed with remaining 2", got)
	}
}

// TestLocalHonestDurations checks, over limits with awkward refill
// intervals, that waiting RetryAfter always suffices while waiting a
// microsecond less does not, and that ResetAfter brings the full burst
// back exactly.
func TestLocalHonestDurations(t *testing.T) {
	limits := []Limit{
		{1, time.Second}, {3, 7 * time.Second}, {100, time.Minute}, {7, time.Hour},
		{1000, time.Second}, {13, time.Millisecond * 10}, {1000, time.Minute}, {1, 24 * time.Hour}, {97, 1234567 * time.Microsecond},
	}
	for _, l := range limits {
		t.Run(l.String(), func(t *testing.T) {
			clk := clocktest.New(t0)
			lc := NewLocal(LocalOptions{Now: clk.Now})
			for range l.Requests {
				mustAllow(t, lc, "k", l)
			}
			for round := range 50 {
				got := mustAllow(t, lc, "k", l)
				if got.Allowed || got.RetryAfter <= 0 || got.RetryAfter > l.Per/time.Duration(l.Requests)+time.Nanosecond {
					t.Fatalf("round %d: got %+v, want refused with RetryAfter in (0, %v]", round, got, l.Per/time.Duration(l.Requests))
				}
				if got.RetryAfter > time.Microsecond {
					clk.Advance(got.RetryAfter - time.Microsecond)
					if early := mustAllow(t, lc, "k", l); early.Allowed {
						t.Fatalf("round %d: allowed 1µs before RetryAfter %v", round, got.RetryAfter)
					}
					clk.Advance(time.Microsecond)
				} else {
					clk.Advance(got.RetryAfter)
				}
				if res := mustAllow(t, lc, "k", l); !res.Allowed {
					t.Fatalf("round %d: refused after waiting RetryAfter %v: %+v", round, got.RetryAfter, res)
				}
			}
			got := mustAllow(t, lc, "k", l)
			clk.Advance(got.ResetAfter)
			for i := range l.Requests {
				if res := mustAllow(t, lc, "k", l); !res.Allowed || res.Remaining != l.Requests-1-i {
					t.Fatalf("after ResetAfter %v, request %d: got %+v, want allowed, remaining %d", got.ResetAfter, i+1, res, l.Requests-1-i)
				}
			}
			if res := mustAllow(t, lc, "k", l); res.Allowed {
				t.Fatalf("after ResetAfter, request %d: got %+v, want refused", l.Requests+1, res)
			}
		})
	}
}

// TestLocalClockBackwards checks that a clock stepping back neither
// refills nor panics.
func TestLocalClockBackwards(t *testing.T) {
	clk := clocktest.New(t0)
	lc := NewLocal(LocalOptions{Now: clk.Now})
	l := Limit{Requests: 2, Per: time.Minute}
	mustAllow(t, lc, "k", l)
	mustAllow(t, lc, "k", l)
	clk.Advance(-time.Hour)
	if got := mustAllow(t, lc, "k", l); got.Allowed {
		t.Errorf("after the clock went back: got %+v, want refused", got)
	}
}

// FuzzLocalKeys: keys are untrusted bytes; any two distinct keys have
// their own allowance and no key can reach another's state.
func FuzzLocalKeys(f *testing.F) {
	for _, seed := range [][2]string{{"a", "b"}, {"a", "a\x00"}, {"", "\xff"}, {"key_1", "key_1 "}, {"ü", "u\u0308"}, {"x", "x"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		lc := NewLocal(LocalOptions{MaxEntries: 2, Now: clocktest.New(t0).Now})
		l := Limit{Requests: 2, Per: time.Hour}
		for i := range 2 {
			if got := mustAllow(t, lc, k1, l); !got.Allowed || got.Remaining != 1-i {
				t.Fatalf("k1 request %d: got %+v", i+1, got)
			}
		}
		got := mustAllow(t, lc, k2, l)
		if want := k1 != k2; got.Allowed != want {
			t.Fatalf("k2 after k1 used up: Allowed = %v, want %v (k1 %q, k2 %q)", got.Allowed, want, k1, k2)
		}
	})
}
