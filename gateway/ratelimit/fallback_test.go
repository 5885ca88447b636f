package ratelimit

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// fallbackRig is a Fallback on a real redis-server, plus a second Redis
// limiter on its own client that plays another gateway replica.
type fallbackRig struct {
	srv   *redistest.Server
	clk   *clocktest.Clock
	sent  *countHook // commands the Fallback's client sent
	fb    *Fallback
	other *Redis
	logs  *syncBuffer

	mu    sync.Mutex
	calls []bool // OnFallback arguments, in order
}

const rigRetry = 500 * time.Millisecond

func newFallbackRig(t *testing.T) *fallbackRig {
	t.Helper()
	rg := &fallbackRig{srv: redistest.Start(t), clk: clocktest.New(t0), sent: &countHook{}, logs: &syncBuffer{}}
	rdb := newClient(t, rg.srv, true)
	rdb.AddHook(rg.sent)
	rg.other = NewRedis(newClient(t, rg.srv, false), "fb:")
	rg.fb = NewFallback(NewRedis(rdb, "fb:"), NewLocal(LocalOptions{Now: rg.clk.Now}), FallbackOptions{
		OnFallback: func(active bool) {
			rg.mu.Lock()
			defer rg.mu.Unlock()
			rg.calls = append(rg.calls, active)
		},
		Logger:        slog.New(slog.NewJSONHandler(rg.logs, nil)),
		RetryInterval: rigRetry,
		Now:           rg.clk.Now,
	})
	return rg
}

// allow calls the Fallback, which must never fail.
func (rg *fallbackRig) allow(t *testing.T, ctx context.Context, key string, l Limit) Result {
	t.Helper()
	res, err := rg.fb.Allow(ctx, key, l)
	if err != nil {
		t.Fatalf("Fallback.Allow: error %v, want none ever", err)
	}
	return res
}

// checkCalls compares the OnFallback calls so far with want.
func (rg *fallbackRig) checkCalls(t *testing.T, want ...bool) {
	t.Helper()
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if !slices.Equal(rg.calls, want) {
		t.Errorf("OnFallback calls = %v, want %v", rg.calls, want)
	}
}

// checkLogs counts log lines by level and checks that no key was logged.
func (rg *fallbackRig) checkLogs(t *testing.T, warn, info, errs int, keys ...string) {
	t.Helper()
	logs := rg.logs.String()
	for level, want := range map[string]int{"WARN": warn, "INFO": info, "ERROR": errs} {
		if got := strings.Count(logs, `"level":"`+level+`"`); got != want {
			t.Errorf("%s log lines = %d, want %d; logs:\n%s", level, got, want, logs)
		}
	}
	for _, k := range keys {
		if strings.Contains(logs, k) {
			t.Errorf("logs contain the key %q:\n%s", k, logs)
		}
	}
}

// TestFallbackOutage stops Redis mid-test and restarts it: no request
// fails, local limits apply during the outage, Redis is retried at most
// once per RetryInterval, and the shared limit is back afterwards.
func TestFallbackOutage(t *testing.T) {
	rg := newFallbackRig(t)
	ctx := context.Background()
	l := Limit{Requests: 3, Per: time.Hour}

	// Redis up: the other replica's request counts here too.
	mustAllow(t, rg.other, "user-7", l)
	if got := rg.allow(t, ctx, "user-7", l); !got.Allowed || got.Remaining != 1 {
		t.Fatalf("redis up: got %+v, want allowed, remaining 1 (shared with the other replica)", got)
	}
	rg.checkCalls(t)

	rg.srv.Stop(t)
	// Local limits: this replica goes on from what Redis last said was left (1), not a
	// fresh allowance, then refuses.
	for i, want := range []Result{
		{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: time.Hour},
		{Allowed: false, Limit: 3, Remaining: 0, ResetAfter: time.Hour, RetryAfter: 20 * time.Minute},
		{Allowed: false, Limit: 3, Remaining: 0, ResetAfter: time.Hour, RetryAfter: 20 * time.Minute},
	} {
		if got := rg.allow(t, ctx, "user-7", l); got != want {
			t.Fatalf("redis down, request %d: got %+v, want %+v", i+1, got, want)
		}
		if i == 0 && !rg.fb.Active() {
			t.Fatal("Active() = false after a Redis error, want true")
		}
	}
	rg.checkCalls(t, true)
	rg.checkLogs(t, 1, 0, 0, "user-7")

	// Within RetryInterval nothing is sent to Redis; after it, one probe.
	sent := rg.sent.n.Load()
	for range 20 {
		rg.allow(t, ctx, "other-user", l)
	}
	if got := rg.sent.n.Load(); got != sent {
		t.Fatalf("commands sent within RetryInterval of the outage = %d, want 0", got-sent)
	}
	rg.clk.Advance(rigRetry)
	rg.allow(t, ctx, "other-user", l)
	rg.allow(t, ctx, "other-user", l)
	if got := rg.sent.n.Load(); got != sent+1 {
		t.Fatalf("commands sent after RetryInterval = %d, want 1 (one probe)", got-sent)
	}
	rg.checkCalls(t, true)
	rg.checkLogs(t, 1, 0, 0, "user-7", "other-user")

	rg.srv.Restart(t) // empty
	mustAllow(t, rg.other, "user-8", l)
	mustAllow(t, rg.other, "user-8", l)
	for i := 0; rg.fb.Active(); i++ {
		// The first probe may meet a connection from before the restart.
		if i == 5 {
			t.Fatal("still falling back after 5 probes with Redis up")
		}
		rg.clk.Advance(rigRetry)
		rg.allow(t, ctx, "probe", l)
	}
	rg.checkCalls(t, true, false)
	rg.checkLogs(t, 1, 1, 0, "user-7", "other-user", "user-8", "probe")
	// Shared again: the other replica used 2 of user-8's 3; locally
	// user-8 would still have all 3 (this replica never asked Redis about it).
	if got := rg.allow(t, ctx, "user-8", l); !got.Allowed || got.Remaining != 0 {
		t.Fatalf("redis back: got %+v, want allowed, remaining 0 (shared)", got)
	}
	if got := rg.allow(t, ctx, "user-8", l); got.Allowed {
		t.Fatalf("redis back, second: got %+v, want refused", got)
	}
}

// TestFallbackCallerCancel: a caller that gives up is not a Redis outage.
func TestFallbackCallerCancel(t *testing.T) {
	rg := newFallbackRig(t)
	l := Limit{Requests: 3, Per: time.Hour}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, ctx := range []context.Context{cancelled, expired} {
		if got := rg.allow(t, ctx, "k", l); !got.Allowed || got.Limit != 3 {
			t.Errorf("gone caller: got %+v, want an allowed local answer", got)
		}
	}
	if rg.fb.Active() {
		t.Error("Active() = true after the caller cancelled, want false")
	}
	rg.checkCalls(t)
	rg.checkLogs(t, 0, 0, 0)

	sent := rg.sent.n.Load()
	mustAllow(t, rg.other, "k", l)
	if got := rg.allow(t, context.Background(), "k", l); !got.Allowed || got.Remaining != 1 {
		t.Errorf("next call: got %+v, want allowed, remaining 1 from Redis", got)
	}
	if rg.sent.n.Load() == sent {
		t.Error("next call did not go to Redis")
	}
}

// TestFallbackConcurrentOutage: Redis stops under concurrent load; no
// call fails and the switch is reported exactly once.
func TestFallbackConcurrentOutage(t *testing.T) {
	rg := newFallbackRig(t)
	l := Limit{Requests: 1000, Per: time.Hour}
	var (
		done  atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		keys  = []string{"k1", "k2", "k3", "k4"}
		first = make(chan struct{})
		once  sync.Once
	)
	for _, key := range keys {
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := rg.fb.Allow(context.Background(), key, l); err != nil {
						t.Errorf("Allow: %v", err)
						return
					}
					if done.Add(1) >= 200 {
						once.Do(func() { close(first) })
					}
				}
			})
		}
	}
	<-first
	rg.srv.Stop(t)
	before := done.Load()
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < before+500 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll, bounded
	}
	close(stop)
	wg.Wait()
	if !rg.fb.Active() {
		t.Fatal("Active() = false after Redis stopped under load, want true")
	}
	rg.checkCalls(t, true)
	rg.checkLogs(t, 1, 0, 0, keys...)
}

// TestFallbackInvalidLimit: an invalid limit is refused without an error,
// logged once, and is no reason to fall back.
func TestFallbackInvalidLimit(t *testing.T) {
	rg := newFallbackRig(t)
	for range 3 {
		if got := rg.allow(t, context.Background(), "k", Limit{Requests: 0, Per: time.Minute}); got != (Result{}) {
			t.Errorf("invalid limit: got %+v, want a refusal with zero fields", got)
		}
	}
	if got := rg.sent.n.Load(); got != 0 {
		t.Errorf("commands sent for an invalid limit = %d, want 0", got)
	}
	rg.checkCalls(t)
	rg.checkLogs(t, 0, 0, 1, `"k"`)
}

// TestFallbackDefaults checks that zero FallbackOptions work.
func TestFallbackDefaults(t *testing.T) {
	srv := redistest.Start(t)
	fb := NewFallback(NewRedis(srv.Client(t), "d:"), NewLocal(LocalOptions{}), FallbackOptions{})
	if fb.retry != DefaultRetryInterval || DefaultRetryInterval != time.Second {
		t.Errorf("retry = %v, want 1s", fb.retry)
	}
	if got, err := fb.Allow(context.Background(), "k", Limit{Requests: 2, Per: time.Minute}); err != nil || !got.Allowed || got.Remaining != 1 {
		t.Errorf("got %+v, %v; want allowed, remaining 1", got, err)
	}
}

// TestFallbackStartsFromReplicaShare: with three replicas sharing the limits, a replica
// that loses Redis allows its share of what Redis last said was left, and a third of the
// limit for a bucket it never asked about: an outage lets through at most about what was
// left at the switch, not a whole limit per replica.
func TestFallbackStartsFromReplicaShare(t *testing.T) {
	srv := redistest.Start(t)
	clk := clocktest.New(t0)
	fbs := make([]*Fallback, 3)
	for i := range fbs {
		fbs[i] = NewFallback(NewRedis(newClient(t, srv, true), "fs:"), NewLocal(LocalOptions{Now: clk.Now}),
			FallbackOptions{Now: clk.Now, RetryInterval: time.Hour, Replicas: func() int { return 3 }})
	}
	ctx := context.Background()
	l := Limit{Requests: 90, Per: time.Hour}
	// 60 of 90 used, spread over the replicas: 30 left, 10 each.
	for i := range 60 {
		if res, err := fbs[i%3].Allow(ctx, "k", l); err != nil || !res.Allowed {
			t.Fatalf("request %d with Redis up: %+v, %v", i, res, err)
		}
	}
	srv.Stop(t)
	allowed := 0
	for i := range 90 {
		res, err := fbs[i%3].Allow(ctx, "k", l)
		if err != nil {
			t.Fatal(err)
		}
		if res.Limit != 90 {
			t.Fatalf("fallback answer reports limit %d, want 90", res.Limit)
		}
		if res.Allowed {
			allowed++
		}
	}
	for i, f := range fbs {
		if !f.Active() {
			t.Errorf("replica %d not falling back", i)
		}
	}
	// Each replica last heard 30+ left (the first 58 answers left 32, 31, 30): a tenth
	// of a request of rounding each.
	if allowed < 28 || allowed > 33 {
		t.Errorf("during the outage %d of the 30 left were allowed, want about 30 (each replica its share)", allowed)
	}
	// A bucket no replica asked Redis about: a third of the limit each.
	fresh := 0
	for i := range 300 {
		if res, _ := fbs[i%3].Allow(ctx, "new", l); res.Allowed {
			fresh++
		}
	}
	if fresh != 90 {
		t.Errorf("a new bucket during the outage allowed %d over three replicas, want 90 (30 each)", fresh)
	}
}

func TestLocalMirror(t *testing.T) {
	clk := clocktest.New(t0)
	lc := NewLocal(LocalOptions{Now: clk.Now})
	l := Limit{Requests: 10, Per: time.Hour}
	ctx := context.Background()
	for _, tc := range []struct{ mirror, want int }{{4, 4}, {9, 9}, {0, 0}, {10, 10}, {-3, 0}, {99, 10}} {
		lc.Mirror("k", l, tc.mirror)
		n := 0
		for range 20 {
			if res, _ := lc.Allow(ctx, "k", l); res.Allowed {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("after Mirror(%d): %d allowed, want %d", tc.mirror, n, tc.want)
		}
	}
}
