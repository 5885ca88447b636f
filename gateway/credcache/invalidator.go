package credcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/randid"
	"github.com/authgate/authgate/gateway/store"
)

// DefaultChannel is the pub/sub channel invalidations travel on.
const DefaultChannel = "invalidate"

// maxHeartbeat caps the default heartbeat interval.
const maxHeartbeat = 250 * time.Millisecond

// trustBeats is how many heartbeat intervals of silence the cache stays trusted for (at
// most one TTL): with the default heartbeat, a subscription that stopped delivering is
// distrusted within a second.
const trustBeats = 4

// silentWindows is how many trust windows of silence make Run drop the subscription and
// subscribe again: a connection that drops packets without a reset may never be noticed
// by the client itself.
const silentWindows = 2

// target is what an Invalidator acts on; *Cache[V] for any V.
type target interface {
	Invalidate(tag string) int
	Reverify()
	Trusted() bool
	trustFor(at time.Time, d time.Duration)
}

// InvalidatorOptions configures NewInvalidator. The zero value gives the
// defaults.
type InvalidatorOptions struct {
	// Channel is the pub/sub channel. Every replica must use the same one.
	// Default: DefaultChannel.
	Channel string
	// Heartbeat is how often the Invalidator publishes a heartbeat on
	// Channel, which proves to every replica, its own included, that the
	// subscription delivers. It must be less than half the cache TTL. The
	// cache stays trusted for four heartbeats (at most one TTL) after the
	// last message. Default: TTL/4, at most 250ms.
	Heartbeat time.Duration
	// Logger receives subscription problems. Default: discard.
	Logger *slog.Logger
	// Metrics, when set, records authgate_invalidation_lag_seconds.
	Metrics *metrics.Metrics
	// Local says the store is this process's own (store.Memory): no other replica shares
	// it and no message can be lost, so the cache is always trusted and Run only applies
	// invalidations.
	Local bool
	// Subscribed, when set, is called each time the store confirms a (re)subscription,
	// before the cache is flushed for it: the store answered, so the caller may count it
	// as up again rather than wait for its next health probe. It must return quickly.
	Subscribed func()
}

// Invalidator keeps one Cache coherent with the caches of other replicas
// through a store's pub/sub. Publish invalidates locally and broadcasts;
// Run applies every replica's invalidations to the cache.
//
// Run also guards against lost messages. When the subscription reports
// that messages may have been missed (a reconnect or a full buffer), the
// cache is flushed. And since a dead connection may not be noticed at all,
// every replica publishes a heartbeat: while no message at all has arrived
// for four heartbeat intervals (the trust window, at most the cache TTL),
// the cache is not trusted (Cache.Trusted), so Get returns no Hit and the
// caller re-reads the store; after two trust windows of silence Run drops
// the subscription and subscribes again, which flushes the cache once it is
// confirmed. A lost invalidation therefore never keeps a revoked credential
// alive longer than the trust window (1s by default).
//
// Message times come from each replica's clock, so the lag metric includes
// clock skew between replicas.
//
// An Invalidator is safe for concurrent use. Run must be called once.
type Invalidator struct {
	c         target
	st        store.Store
	now       func() time.Time
	channel   string
	heartbeat time.Duration
	window    time.Duration // trust window: trustBeats heartbeats, at most the TTL
	log       *slog.Logger
	lag       prometheus.Histogram // nil without Metrics
	onSub     func()

	// id names this Invalidator's messages; seq numbers them. sendMu keeps the numbers
	// in the order the store receives them.
	id     string
	sendMu sync.Mutex
	seq    uint64
	// senders is the last sequence number heard from each sender since the last
	// (re)subscription. Only Run's goroutine uses it.
	senders map[string]uint64

	readyOnce sync.Once
	ready     chan struct{}
}

// message is what travels on the channel. A message without a tag is a
// heartbeat. From and Seq let a receiver notice a lost message: each sender
// numbers every message it tries to publish, so a gap means one was lost (or
// failed to publish) and the cache is flushed. Messages without From (from an
// older replica) are applied without that check.
type message struct {
	Tag  string `json:"tag,omitempty"`
	At   int64  `json:"at"` // publish time, UnixNano
	From string `json:"from,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`
}

// maxSenders bounds the senders an Invalidator tracks (replicas that come and go); past it
// the cache is flushed and the tracking starts again.
const maxSenders = 1024

// NewInvalidator returns an Invalidator for c over st. The cache is trusted
// for one trust window from now; after that, only while Run hears from the
// subscription. A Cache takes at most one Invalidator. It returns an error
// for invalid options.
func NewInvalidator[V any](c *Cache[V], st store.Store, opts InvalidatorOptions) (*Invalidator, error) {
	if c == nil || st == nil {
		return nil, errors.New("credcache: invalidator: cache and store are required")
	}
	ttl := time.Duration(c.ttl)
	if opts.Channel == "" {
		opts.Channel = DefaultChannel
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = min(ttl/4, maxHeartbeat)
	}
	if opts.Heartbeat <= 0 || opts.Heartbeat >= ttl/2 {
		return nil, fmt.Errorf("credcache: invalidator: heartbeat: must be > 0 and < ttl/2 (%s), got %s", ttl/2, opts.Heartbeat)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Subscribed == nil {
		opts.Subscribed = func() {}
	}
	inv := &Invalidator{
		onSub:     opts.Subscribed,
		id:        randid.New("", 16),
		senders:   map[string]uint64{},
		c:         c,
		st:        st,
		now:       c.now,
		channel:   opts.Channel,
		heartbeat: opts.Heartbeat,
		window:    min(trustBeats*opts.Heartbeat, ttl),
		log:       opts.Logger,
		ready:     make(chan struct{}),
	}
	if opts.Metrics != nil {
		inv.lag = opts.Metrics.InvalidationLag
	}
	if opts.Local {
		inv.window = time.Duration(math.MaxInt64 / 2) // never lapses; see Options.Local
	}
	c.trustFor(inv.now(), inv.window)
	return inv, nil
}

// Publish removes the entries tagged tag from the local cache at once, then
// broadcasts the invalidation to every replica. The local cache is
// invalidated even when the broadcast fails; the error then says so, and
// other replicas drop the entries within the cache TTL at the latest.
func (inv *Invalidator) Publish(ctx context.Context, tag string) error {
	if tag == "" {
		return errors.New("credcache: publish: empty tag")
	}
	inv.c.Invalidate(tag)
	if err := inv.send(ctx, tag); err != nil {
		return fmt.Errorf("credcache: publish: %w", err)
	}
	return nil
}

// send publishes one message stamped with the current time and the next
// sequence number. A failed publish still uses its number, so receivers see
// the gap and flush: the message may have been an invalidation.
func (inv *Invalidator) send(ctx context.Context, tag string) error {
	inv.sendMu.Lock()
	defer inv.sendMu.Unlock()
	inv.seq++
	msg, err := json.Marshal(message{Tag: tag, At: inv.now().UnixNano(), From: inv.id, Seq: inv.seq})
	if err != nil {
		return err // cannot happen for this type
	}
	return inv.st.Publish(ctx, inv.channel, msg)
}

// Trusted reports whether the cache may serve Hits: the subscription has
// delivered a message (a heartbeat at least) within the trust window.
func (inv *Invalidator) Trusted() bool { return inv.c.Trusted() }

// Ready returns a channel that is closed once Run has subscribed for the
// first time; invalidations published after that reach this replica.
func (inv *Invalidator) Ready() <-chan struct{} { return inv.ready }

// Run subscribes to the channel and applies invalidations until ctx is
// done, then returns nil after its goroutines have stopped. It flushes the
// cache on every (re)subscription, since messages published while it was
// not subscribed are lost. When subscribing fails it retries every
// heartbeat interval; it returns an error only when the store is closed.
func (inv *Invalidator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { inv.beat(ctx) })
	defer wg.Wait()
	defer cancel()

	for {
		sub, err := inv.st.Subscribe(ctx, inv.channel)
		switch {
		case ctx.Err() != nil:
			if sub != nil {
				_ = sub.Close()
			}
			return nil
		case errors.Is(err, store.ErrClosed):
			return fmt.Errorf("credcache: subscribe: %w", err)
		case err != nil:
			inv.log.Error("invalidation subscribe failed", "channel", inv.channel, "err", err)
			if !inv.wait(ctx) {
				return nil
			}
			continue
		}
		inv.onSub()
		clear(inv.senders)
		inv.resync("subscribed")
		inv.readyOnce.Do(func() { close(inv.ready) })
		inv.consume(ctx, sub)
		_ = sub.Close() // a close error leaves nothing to do; we resubscribe
		if ctx.Err() != nil {
			return nil
		}
		inv.log.Warn("invalidation subscription ended; resubscribing", "channel", inv.channel)
	}
}

// consume applies messages from sub until ctx is done, sub ends, or sub has
// been silent for silentWindows trust windows.
func (inv *Invalidator) consume(ctx context.Context, sub *store.Subscription) {
	t := time.NewTicker(inv.heartbeat)
	defer t.Stop()
	heard := inv.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Reconnected():
			inv.onSub()
			clear(inv.senders)
			inv.resync("messages may have been lost")
			heard = inv.now()
		case msg, ok := <-sub.C():
			if !ok {
				return
			}
			inv.apply(msg)
			heard = inv.now()
		case <-t.C:
			if silent := inv.now().Sub(heard); silent > silentWindows*inv.window {
				inv.log.Warn("invalidation subscription silent; subscribing again", "channel", inv.channel,
					"silent", silent.Round(time.Millisecond))
				return
			}
		}
	}
}

// apply handles one message: any message proves that the subscription
// delivers; one with a tag is also an invalidation.
func (inv *Invalidator) apply(raw []byte) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		// It may have been an invalidation; flushing is the safe reading.
		inv.log.Error("invalid invalidation message; flushing cache", "err", err)
		inv.c.Reverify()
		inv.c.trustFor(inv.now(), inv.window)
		return
	}
	if m.Tag != "" {
		inv.c.Invalidate(m.Tag)
	}
	if inv.lost(m) {
		inv.resync("a message from another replica was lost")
	}
	now := inv.now()
	inv.c.trustFor(now, inv.window)
	if m.Tag != "" && inv.lag != nil {
		inv.lag.Observe(max(0, now.Sub(time.Unix(0, m.At)).Seconds()))
	}
}

// lost records m's sequence number and reports whether a message from its
// sender was missed before it.
func (inv *Invalidator) lost(m message) bool {
	if m.From == "" {
		return false
	}
	last, known := inv.senders[m.From]
	if !known && len(inv.senders) >= maxSenders {
		clear(inv.senders)
		inv.senders[m.From] = m.Seq
		return true
	}
	if m.Seq > last || !known {
		inv.senders[m.From] = m.Seq
	}
	return known && m.Seq > last+1
}

// resync flushes the cache and trusts it again: whatever it held may have
// missed invalidations, and what it caches from now on will not.
func (inv *Invalidator) resync(reason string) {
	inv.c.Reverify()
	inv.c.trustFor(inv.now(), inv.window)
	inv.log.Info("credential cache flushed", "reason", reason)
}

// beat publishes a heartbeat every interval until ctx is done. Each publish
// is bounded by the interval, so an unreachable store never delays the
// next one.
func (inv *Invalidator) beat(ctx context.Context) {
	t := time.NewTicker(inv.heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, inv.heartbeat)
		err := inv.send(pctx, "")
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			inv.log.Error("invalidation heartbeat failed", "channel", inv.channel, "err", err)
			failing = true
		case err == nil && failing:
			inv.log.Info("invalidation heartbeat recovered", "channel", inv.channel)
			failing = false
		}
	}
}

// wait pauses for one heartbeat interval and reports false if ctx ended
// first.
func (inv *Invalidator) wait(ctx context.Context) bool {
	t := time.NewTimer(inv.heartbeat)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
