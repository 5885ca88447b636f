package ratelimit

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/randid"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// t0 is the start of every fake clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// harness makes Limiters under test of one kind.
type harness struct {
	name string
	// new returns a fresh limiter with no state, and a function that lets
	// d pass for it: it advances a fake clock, or sleeps for Redis, whose
	// clock is the server's.
	new func(t *testing.T) (lim Limiter, wait func(d time.Duration))
	// slack is how much shorter than the exact value a reported duration
	// may be, because real time passes between two Redis calls.
	slack time.Duration
}

// harnesses returns a Local and a Redis harness, so that every test table
// runs against both. The Redis ones share one server, each limiter under
// its own prefix.
func harnesses(t *testing.T) []harness {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	return []harness{
		{name: "local", new: func(*testing.T) (Limiter, func(time.Duration)) {
			clk := clocktest.New(t0)
			return NewLocal(LocalOptions{Now: clk.Now}), clk.Advance
		}},
		// Real time: a loaded machine stretches the gaps between calls.
		{name: "redis", slack: 500 * time.Millisecond, new: func(*testing.T) (Limiter, func(time.Duration)) {
			return NewRedis(rdb, randid.New("t", 8)+":"), time.Sleep
		}},
	}
}

// newClient returns a client for srv. short selects the timeouts of the
// outage tests: 200ms, no retries (in go-redis v9, MaxRetries -1 disables
// retries, 0 means the default of 3) and one dial attempt (DialerRetries
// defaults to 5 attempts 100ms apart).
func newClient(t testing.TB, srv *redistest.Server, short bool) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: srv.Addr(), DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}
	if short {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		o.MaxRetries, o.DialerRetries = -1, 1
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// mustAllow calls lim.Allow and fails the test on an error.
func mustAllow(t *testing.T, lim Limiter, key string, l Limit) Result {
	t.Helper()
	res, err := lim.Allow(context.Background(), key, l)
	if err != nil {
		t.Fatalf("Allow(%v): unexpected error %v", l, err)
	}
	return res
}

// within fails the test unless got is in [want-slack, want].
func within(t *testing.T, what string, got, want, slack time.Duration) {
	t.Helper()
	if got > want || got < want-slack {
		t.Errorf("%s = %v, want %v (slack %v)", what, got, want, slack)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countHook counts the commands a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
