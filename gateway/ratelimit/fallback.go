package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRetryInterval is the default for FallbackOptions.RetryInterval.
const DefaultRetryInterval = time.Second

// FallbackOptions configures [NewFallback]. The zero value is ready to use.
type FallbackOptions struct {
	// OnFallback, when set, is called with true when Redis stops answering
	// and local limits take over, and with false when Redis is used again.
	// Calls are serialised and alternate, starting with true; OnFallback
	// must return quickly and must not call Allow. The gateway sets the
	// authgate_rate_limit_fallback gauge here.
	OnFallback func(active bool)
	// Logger receives one Warn line when falling back and one Info line
	// when Redis is back. Keys are never logged. Default: discard.
	Logger *slog.Logger
	// RetryInterval is how often, at most, Redis is tried again while
	// falling back; every other request goes straight to the local limiter,
	// so an outage does not cost a dial timeout per request. Default: 1s.
	RetryInterval time.Duration
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Replicas returns how many gateway replicas share the limits (this one included).
	// While Redis answers, each answer is mirrored into the local limiter as this
	// replica's share of what is left; while falling back, each replica allows its share
	// of every limit (the limit divided by Replicas, rounded up). So an outage or a
	// failover lets through at most what was left of a limit at the switch, plus the
	// requests in flight, rather than a whole limit per replica. Default: 1.
	Replicas func() int
}

// mirror is a local limiter that can take a shared limiter's state: [Local], [Partitioned].
type mirror interface {
	Mirror(key string, l Limit, remaining int)
}

// Fallback is a [Limiter] that uses Redis and, while Redis is unreachable,
// a Local limiter: each replica then enforces its share of the limit on its
// own, starting from its share of what Redis last said was left (see
// FallbackOptions.Replicas). It never fails a request because of Redis. Fallback
// is safe for concurrent use.
type Fallback struct {
	redis      *Redis
	local      Limiter
	onFallback func(active bool)
	log        *slog.Logger
	retry      time.Duration
	now        func() time.Time
	replicas   func() int
	mirror     mirror // nil when local cannot mirror

	// n caches replicas() for a second: nAt is when it was read (Unix ns).
	n   atomic.Int64
	nAt atomic.Int64

	active    atomic.Bool  // true while answering from local
	nextProbe atomic.Int64 // while active: Unix ns before which Redis is not tried

	mu    sync.Mutex // serialises state changes and their OnFallback calls
	since time.Time  // when falling back started; guarded by mu

	invalidLogged atomic.Bool // an invalid limit has been logged once
}

// NewFallback returns a Fallback that asks primary and falls back to local: a [Local],
// or a [Partitioned] set of them.
func NewFallback(primary *Redis, local Limiter, o FallbackOptions) *Fallback {
	if o.OnFallback == nil {
		o.OnFallback = func(bool) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Replicas == nil {
		o.Replicas = func() int { return 1 }
	}
	f := &Fallback{
		redis:      primary,
		local:      local,
		onFallback: o.OnFallback,
		log:        o.Logger,
		retry:      o.RetryInterval,
		now:        o.Now,
		replicas:   o.Replicas,
	}
	f.mirror, _ = local.(mirror)
	return f
}

// share is this replica's part of l: l divided among the replicas, rounded up.
func (f *Fallback) share(l Limit) (Limit, int) {
	now := f.now().UnixNano()
	if now-f.nAt.Load() > int64(time.Second) {
		f.n.Store(int64(max(f.replicas(), 1)))
		f.nAt.Store(now)
	}
	n := int(max(f.n.Load(), 1))
	return Limit{Requests: (l.Requests + n - 1) / n, Per: l.Per}, n
}

// Active reports whether f is currently answering from the local limiter.
func (f *Fallback) Active() bool { return f.active.Load() }

// Allow answers from Redis, or from the local limiter while Redis is
// unreachable (see [FallbackOptions]). A cancelled or expired ctx is the
// caller giving up, not a Redis outage: that request is answered locally
// and the mode does not change. Allow never returns an error; a request
// with an invalid Limit (a configuration bug) is refused and logged once
// at Error level.
func (f *Fallback) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if err := l.validate(); err != nil {
		if f.invalidLogged.CompareAndSwap(false, true) {
			f.log.Error("rate limit invalid, refusing requests", slog.String("limit", l.String()))
		}
		return Result{Limit: max(l.Requests, 0)}, nil
	}
	probe := false
	if f.active.Load() {
		if !f.claimProbe() {
			return f.allowLocal(ctx, key, l)
		}
		probe = true
	}
	res, err := f.redis.Allow(ctx, key, l)
	switch {
	case err == nil:
		// Only a probe ends the fallback: a success from a call that was
		// already in flight when the outage began proves little.
		if probe {
			f.recovered()
		}
		if f.mirror != nil {
			sl, n := f.share(l)
			f.mirror.Mirror(key, sl, res.Remaining/n)
		}
		return res, nil
	case ctx.Err() != nil:
		return f.allowLocal(ctx, key, l)
	default:
		f.failed(err)
		return f.allowLocal(ctx, key, l)
	}
}

// allowLocal answers from the local limiter. l has been validated, so a
// Local cannot fail.
func (f *Fallback) allowLocal(ctx context.Context, key string, l Limit) (Result, error) {
	sl, _ := f.share(l)
	res, _ := f.local.Allow(ctx, key, sl)
	res.Limit = l.Requests // the limit is still l; this replica allows its share of it
	return res, nil
}

// claimProbe reports whether this call may try Redis while falling back:
// true for at most one call per retry interval.
func (f *Fallback) claimProbe() bool {
	now := f.now().UnixNano()
	next := f.nextProbe.Load()
	if now < next {
		return false
	}
	return f.nextProbe.CompareAndSwap(next, now+int64(f.retry))
}

// failed switches to local limits after a Redis error, unless already
// there.
func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active.Load() {
		return
	}
	now := f.now()
	f.since = now
	f.nextProbe.Store(now.UnixNano() + int64(f.retry))
	f.active.Store(true)
	f.log.Warn("rate limit redis unavailable, using local limits",
		slog.Any("err", err), slog.Duration("retry_interval", f.retry))
	f.onFallback(true)
}

// StoreDown switches to local limits at once because the store is known to be down
// (the gateway's breaker opened), whether or not a request has asked since: the
// fallback and its gauge follow the outage, not the traffic.
func (f *Fallback) StoreDown(err error) { f.failed(err) }

// StoreUp switches back to Redis at once because the store answers again (a health probe
// or a confirmed subscription), instead of waiting for the next probe's interval.
func (f *Fallback) StoreUp() { f.recovered() }

// recovered switches back to Redis, unless already there.
func (f *Fallback) recovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active.Load() {
		return
	}
	f.active.Store(false)
	f.log.Info("rate limit redis available again, using shared limits",
		slog.Duration("fallback_for", f.now().Sub(f.since)))
	f.onFallback(false)
}
