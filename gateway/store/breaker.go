package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned, without trying the server, by every Redis command made while
// the Breaker is open: the store is known to be unreachable.
var ErrUnavailable = errors.New("store: unavailable (known down; not tried until a probe succeeds)")

// Breaker states.
const (
	stateUnknown int32 = iota // nothing heard yet
	stateClosed               // the store answers: commands go through
	stateOpen                 // the store is known to be down: commands fail at once
)

// Breaker tracks whether the store is known to be unreachable. Once open, Redis commands
// made through a client it guards fail at once with ErrUnavailable instead of waiting for
// timeouts and retries, so a dead or partitioned Redis costs a request nothing; only
// probes (Redis.Ping) still reach the server. A command that fails for a network reason
// (timeout, refused or reset connection, no free connection in the pool) opens it; the
// owner closes it with Reset when a probe succeeds or a subscription is confirmed. It is
// safe for concurrent use.
type Breaker struct {
	state  atomic.Int32
	resets atomic.Uint64 // bumped by every Reset, so an old failure cannot reopen it
	since  atomic.Int64  // UnixNano of the latest opening; 0: never opened

	mu       sync.Mutex // serialises state changes and their onChange calls
	onChange func(open bool, err error)
}

// NewBreaker returns a Breaker in the unknown state (closed: commands go through).
// onChange, when set, is called on every change of state, serialised: with true and the
// error that opened it, or with false when it closes (also the first time the store is
// heard from). It must return quickly.
func NewBreaker(onChange func(open bool, err error)) *Breaker {
	if onChange == nil {
		onChange = func(bool, error) {}
	}
	return &Breaker{onChange: onChange}
}

// Open reports whether the store is known to be down.
func (b *Breaker) Open() bool { return b.state.Load() == stateOpen }

// Since returns when the breaker last opened, or the zero time if it never has.
func (b *Breaker) Since() time.Time {
	if ns := b.since.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Trip opens the breaker because of err.
func (b *Breaker) Trip(err error) { b.tripUnlessReset(b.resets.Load(), err) }

// tripUnlessReset opens the breaker unless it was Reset since the generation gen was read:
// a command that failed while the store was down must not undo a later recovery.
func (b *Breaker) tripUnlessReset(gen uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.resets.Load() != gen || b.state.Load() == stateOpen {
		return
	}
	b.since.Store(time.Now().UnixNano())
	b.state.Store(stateOpen)
	b.onChange(true, err)
}

// Reset closes the breaker: the store answered.
func (b *Breaker) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resets.Add(1)
	if b.state.Load() == stateClosed {
		return
	}
	b.state.Store(stateClosed)
	b.onChange(false, nil)
}

// probeKey marks a context whose commands go through an open breaker.
type probeKey struct{}

// asProbe returns ctx marked as a probe.
func asProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

func isProbe(ctx context.Context) bool { return ctx.Value(probeKey{}) != nil }

// setupCommands are what go-redis sends, through the hooks, to set up a new connection
// (the pub/sub one included) and PING: they always go through, or an open breaker would
// keep the subscription from coming back, which is one of the ways it closes.
var setupCommands = map[string]bool{"hello": true, "auth": true, "select": true, "client": true,
	"readonly": true, "ping": true}

// blocked reports whether cmds must fail at once: the breaker is open and they are
// neither a probe nor connection setup.
func (b *Breaker) blocked(ctx context.Context, cmds ...redis.Cmder) bool {
	if !b.Open() || isProbe(ctx) {
		return false
	}
	for _, c := range cmds {
		if !setupCommands[strings.ToLower(c.Name())] {
			return true
		}
	}
	return false
}

// unreachable reports whether err, from a command made with ctx, says the server could not
// be reached in time, rather than that the caller gave up or the server refused the
// command.
func unreachable(ctx context.Context, err error) bool {
	var reply redis.Error
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, redis.Nil), errors.Is(err, ErrUnavailable):
		return false
	case errors.As(err, &reply):
		return false // the server answered (an error reply, a failed transaction)
	}
	return true
}

// breakerHook is the go-redis hook through which a Breaker guards a client.
type breakerHook struct{ b *Breaker }

func (h breakerHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h breakerHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.b.blocked(ctx, cmd) {
			cmd.SetErr(ErrUnavailable)
			return ErrUnavailable
		}
		gen := h.b.resets.Load()
		err := next(ctx, cmd)
		if unreachable(ctx, err) {
			h.b.tripUnlessReset(gen, err)
		}
		return err
	}
}

func (h breakerHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.b.blocked(ctx, cmds...) {
			for _, c := range cmds {
				c.SetErr(ErrUnavailable)
			}
			return ErrUnavailable
		}
		gen := h.b.resets.Load()
		err := next(ctx, cmds)
		if unreachable(ctx, err) {
			h.b.tripUnlessReset(gen, err)
		}
		return err
	}
}
