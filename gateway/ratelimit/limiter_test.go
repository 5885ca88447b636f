package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestLimiter runs the properties every Limiter must have against Local
// (fake clock) and Redis (real redis-server, real time).
func TestLimiter(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, lim Limiter, wait func(time.Duration), slack time.Duration)
	}{
		{"burst then refuse", testBurst},
		{"refusal does not consume", testRefusalDoesNotConsume},
		{"retry after is honest", testRetryAfterHonest},
		{"reset after is honest", testResetAfterHonest},
		{"keys are independent", testKeysIndependent},
		{"raised limit applies", testLimitRaised},
		{"lowered limit applies", testLimitLowered},
		{"invalid limit", testInvalidLimit},
		{"concurrent callers", testConcurrent},
	}
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					lim, wait := h.new(t)
					tt.run(t, lim, wait, h.slack)
				})
			}
		})
	}
}

// testBurst: N per P allows exactly N at once, counting Remaining down, and
// refuses the next with the time until one refills.
func testBurst(t *testing.T, lim Limiter, _ func(time.Duration), slack time.Duration) {
	l := Limit{Requests: 5, Per: time.Minute} // one request per 12s
	for i := range 5 {
		got := mustAllow(t, lim, "user-1", l)
		if !got.Allowed || got.Limit != 5 || got.Remaining != 4-i || got.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed, limit 5, remaining %d, retry 0", i+1, got, 4-i)
		}
		within(t, "ResetAfter", got.ResetAfter, time.Duration(i+1)*12*time.Second, slack)
	}
	got := mustAllow(t, lim, "user-1", l)
	if got.Allowed || got.Limit != 5 || got.Remaining != 0 {
		t.Fatalf("request 6: got %+v, want refused, limit 5, remaining 0", got)
	}
	within(t, "RetryAfter", got.RetryAfter, 12*time.Second, slack)
	within(t, "ResetAfter", got.ResetAfter, time.Minute, slack)
}

// testRefusalDoesNotConsume: refused requests leave RetryAfter and
// ResetAfter where they were, and one refill allows exactly one request.
func testRefusalDoesNotConsume(t *testing.T, lim Limiter, wait func(time.Duration), slack time.Duration) {
	l := Limit{Requests: 5, Per: 5 * time.Second} // one request per second: 20 refusals fit in it even on a loaded machine (real time for redis)
	for range 5 {
		mustAllow(t, lim, "k", l)
	}
	first := mustAllow(t, lim, "k", l)
	if first.Allowed {
		t.Fatalf("request 6: got %+v, want refused", first)
	}
	var last Result
	for i := range 20 {
		last = mustAllow(t, lim, "k", l)
		if last.Allowed || last.RetryAfter > first.RetryAfter || last.ResetAfter > first.ResetAfter {
			t.Fatalf("refusal %d: got %+v, want refused with RetryAfter <= %v, ResetAfter <= %v (first refusal)",
				i+2, last, first.RetryAfter, first.ResetAfter)
		}
	}
	wait(last.RetryAfter)
	if got := mustAllow(t, lim, "k", l); !got.Allowed || got.Remaining != 0 {
		t.Fatalf("after RetryAfter: got %+v, want allowed with remaining 0", got)
	}
	if got := mustAllow(t, lim, "k", l); got.Allowed {
		t.Fatalf("second after RetryAfter: got %+v, want refused", got)
	}
	_ = slack
}

// testRetryAfterHonest: waiting RetryAfter after a refusal is enough, and
// RetryAfter is about one refill interval, not more.
func testRetryAfterHonest(t *testing.T, lim Limiter, wait func(time.Duration), slack time.Duration) {
	l := Limit{Requests: 5, Per: time.Second}
	for range 5 {
		mustAllow(t, lim, "honest", l)
	}
	for round := range 3 {
		got := mustAllow(t, lim, "honest", l)
		if got.Allowed {
			t.Fatalf("round %d: got %+v, want refused", round, got)
		}
		within(t, "RetryAfter", got.RetryAfter, 200*time.Millisecond, slack)
		wait(got.RetryAfter)
		if got := mustAllow(t, lim, "honest", l); !got.Allowed {
			t.Fatalf("round %d, after waiting RetryAfter: got %+v, want allowed", round, got)
		}
	}
}

// testResetAfterHonest: after waiting ResetAfter the whole burst is back.
func testResetAfterHonest(t *testing.T, lim Limiter, wait func(time.Duration), slack time.Duration) {
	l := Limit{Requests: 5, Per: time.Second}
	var got Result
	for range 3 {
		got = mustAllow(t, lim, "reset", l)
	}
	within(t, "ResetAfter", got.ResetAfter, 600*time.Millisecond, slack)
	wait(got.ResetAfter)
	if got := mustAllow(t, lim, "reset", l); !got.Allowed || got.Remaining != 4 {
		t.Fatalf("after ResetAfter: got %+v, want allowed, remaining 4", got)
	}
}

// testKeysIndependent: keys are opaque bytes and never share state, even
// when one is a prefix of another or holds NUL, invalid UTF-8 or ':'.
func testKeysIndependent(t *testing.T, lim Limiter, _ func(time.Duration), _ time.Duration) {
	l := Limit{Requests: 2, Per: time.Hour}
	keys := []string{"", "a", "a\x00", "a\x00b", "\xff\xfe", "rl:a", "a:rl:", "ключ", "user 1\r\n"}
	for _, k := range keys {
		for i := range 2 {
			if got := mustAllow(t, lim, k, l); !got.Allowed || got.Remaining != 1-i {
				t.Fatalf("key %q request %d: got %+v, want allowed, remaining %d", k, i+1, got, 1-i)
			}
		}
		if got := mustAllow(t, lim, k, l); got.Allowed {
			t.Fatalf("key %q request 3: got %+v, want refused", k, got)
		}
	}
}

// testLimitRaised: a new limit for a used-up key applies at once with its
// own rate, without granting a fresh burst.
func testLimitRaised(t *testing.T, lim Limiter, _ func(time.Duration), slack time.Duration) {
	old, raised := Limit{Requests: 10, Per: time.Minute}, Limit{Requests: 20, Per: time.Minute}
	for range 10 {
		mustAllow(t, lim, "k", old)
	}
	got := mustAllow(t, lim, "k", raised)
	if got.Allowed || got.Limit != 20 || got.Remaining != 0 {
		t.Fatalf("raised: got %+v, want refused, limit 20, remaining 0", got)
	}
	within(t, "RetryAfter", got.RetryAfter, 3*time.Second, slack) // 60s/20, the new rate
	if got := mustAllow(t, lim, "k", old); got.Allowed || got.Limit != 10 {
		t.Fatalf("back to old: got %+v, want refused, limit 10", got)
	}
}

// testLimitLowered: a lower limit for a key applies at once.
func testLimitLowered(t *testing.T, lim Limiter, _ func(time.Duration), _ time.Duration) {
	old, lowered := Limit{Requests: 10, Per: time.Minute}, Limit{Requests: 2, Per: time.Minute}
	mustAllow(t, lim, "k", old)
	allowed := 0
	var got Result
	for range 10 {
		got = mustAllow(t, lim, "k", lowered)
		if got.Limit != 2 {
			t.Fatalf("lowered: got %+v, want limit 2", got)
		}
		if got.Allowed {
			allowed++
		}
	}
	// Local keeps the tokens left (9, capped at the new burst of 2); GCRA
	// keeps the time used (6s of the new 60s allowance), leaving one.
	if allowed < 1 || allowed > 2 {
		t.Errorf("lowered: allowed %d of 10, want 1 or 2", allowed)
	}
	if got.Allowed || got.RetryAfter <= 0 || got.RetryAfter > 30*time.Second {
		t.Errorf("lowered, last: got %+v, want refused with RetryAfter within the new 30s interval", got)
	}
}

// testInvalidLimit: a limit that is not positive is an error, never a
// decision.
func testInvalidLimit(t *testing.T, lim Limiter, _ func(time.Duration), _ time.Duration) {
	for _, l := range []Limit{{}, {Requests: 0, Per: time.Minute}, {Requests: -1, Per: time.Minute}, {Requests: 5, Per: 0}, {Requests: 5, Per: -time.Second}} {
		got, err := lim.Allow(context.Background(), "k", l)
		if !errors.Is(err, ErrInvalidLimit) || got != (Result{}) {
			t.Errorf("Allow(%v) = %+v, %v; want zero Result, ErrInvalidLimit", l, got, err)
		}
	}
}

// testConcurrent: concurrent callers on one key get exactly the burst.
func testConcurrent(t *testing.T, lim Limiter, _ func(time.Duration), _ time.Duration) {
	l := Limit{Requests: 100, Per: time.Hour} // refill is 36s per request: none during the test
	const workers, each = 8, 40
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range workers {
		wg.Go(func() {
			n := 0
			for range each {
				res, err := lim.Allow(context.Background(), "shared", l)
				if err != nil {
					t.Errorf("Allow: %v", err)
					return
				}
				if res.Allowed {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Errorf("allowed %d of %d concurrent requests, want 100", allowed, workers*each)
	}
}
