package credcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	keepsStale() bool
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

	// mute: the Invalidator only publishes and collects confirmations (Announce); it
	// sends no heartbeats and no confirmations, so no replica waits for it.
	mute bool
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
	dropped   prometheus.Counter   // authgate_invalidation_unconfirmed_total; nil without Metrics
	onSub     func()
	local     bool
	mute      bool
	// givenUp counts the replicas invalidations stopped waiting for (as dropped does).
	givenUp atomic.Int64

	// id names this Invalidator's messages; seq numbers them. sendMu keeps the numbers
	// in the order the store receives them (seq is atomic so that trust can read it).
	id     string
	sendMu sync.Mutex
	seq    atomic.Uint64
	// senders is the last sequence number heard from each sender since the last
	// (re)subscription. Only Run's goroutine uses it.
	senders map[string]uint64

	// Confirmations (see Publish). peers is what was last heard from each other replica;
	// lastHeard is when this one last heard any message (its own heartbeats included);
	// pending is what each of this Invalidator's unconfirmed invalidations still waits
	// for, by sequence number. acks queues the confirmations this Invalidator owes to
	// others.
	confirmMu sync.Mutex
	peers     map[string]peerState
	lastHeard time.Time

	// gate, when not 0, keeps the cache untrusted until this replica hears back a
	// message of its own numbered gate or later that says it confirms invalidations
	// (see trust). helloNow asks beat for such a message at once.
	gate     atomic.Uint64
	helloNow chan struct{}
	pending  map[uint64]*waiter
	acks     chan string

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
	// Acks says the sender confirms every invalidation it applies, so publishers wait for
	// it. Older replicas do not, and are not waited for; nor is a replica that answers
	// nothing from its cache: one whose cache is not trusted (it hears nothing on the
	// channel) and keeps no stale fallback (fail_closed). A replica that may still serve
	// stale entries (serve_cached) is waited for even while it hears nothing: it may serve
	// the very entry being invalidated, so it must hear the invalidation (resent, see Re)
	// once it hears the channel again.
	Acks bool `json:"acks,omitempty"`
	// Ack confirms that the sender applied the invalidation "<from>/<seq>".
	Ack string `json:"ack,omitempty"`
	// Bye says the sender stopped: publishers stop waiting for it.
	Bye bool `json:"bye,omitempty"`
	// Re marks an invalidation sent again, with its first sequence number, because some
	// replica had not confirmed it (or its first publish failed). It is applied and
	// confirmed like the first, and not counted in the sender's sequence.
	Re bool `json:"re,omitempty"`
	// To names the replicas a resent invalidation still waits for: only they confirm it.
	To []string `json:"to,omitempty"`
}

// peerState is what was last heard from another replica.
type peerState struct {
	heard time.Time
	acks  bool // it confirms invalidations (message.Acks)
}

// waiter is one published invalidation waiting for the replicas that must confirm it.
// Only the publishing goroutine uses tag and sent; echoed is guarded by confirmMu.
type waiter struct {
	seq     uint64
	tag     string
	sent    bool // the store took the invalidation once
	echoed  bool // this replica heard it back: what it hears from others now came after it
	waiting map[string]bool
	done    chan struct{}
}

// maxAcks bounds the confirmations queued for sending; past it they are dropped, and
// the publisher stops waiting after its bound.
const maxAcks = 1024

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
		local:     opts.Local,
		mute:      opts.mute,
		id:        randid.New("", 16),
		senders:   map[string]uint64{},
		peers:     map[string]peerState{},
		pending:   map[uint64]*waiter{},
		acks:      make(chan string, maxAcks),
		c:         c,
		st:        st,
		now:       c.now,
		channel:   opts.Channel,
		heartbeat: opts.Heartbeat,
		window:    min(trustBeats*opts.Heartbeat, ttl),
		log:       opts.Logger,
		ready:     make(chan struct{}),
		lastHeard: c.now(),
		helloNow:  make(chan struct{}, 1),
	}
	if opts.Metrics != nil {
		inv.lag = opts.Metrics.InvalidationLag
		inv.dropped = opts.Metrics.Unconfirmed
	}
	if opts.Local {
		inv.window = time.Duration(math.MaxInt64 / 2) // never lapses; see Options.Local
		c.trustFor(inv.now(), inv.window)
	} else {
		// Not trusted until Run has subscribed and heard this replica's first message
		// back (see trust).
		c.trustFor(inv.now(), 0)
	}
	return inv, nil
}

// Publish removes the entries tagged tag from the local cache at once, then
// broadcasts the invalidation to every replica and waits until each of them
// confirms that it applied it. The local cache is invalidated even when the
// broadcast fails; the error then says so, and other replicas drop the
// entries within the trust window at the latest.
//
// The replicas waited for are those heard from (their heartbeats) within the
// trust window plus one heartbeat, counted in time this replica was hearing
// the channel: one that heard nothing for a while (its subscription was cut,
// as in a store failover) cannot tell that the others went silent. Until each
// confirms, the invalidation is sent again every heartbeat, so a replica that
// missed it while its own subscription was cut applies it once it hears the
// channel again; a first publish that failed is retried the same way.
// Publish stops waiting for a replica that goes silent for the window before
// confirming: it crashed, or it is cut off from the store. The wait also ends
// with ctx, and after two trust windows at most; normally it is one round
// trip through the store. It returns an error only when the invalidation
// never reached the store.
func (inv *Invalidator) Publish(ctx context.Context, tag string) error {
	if tag == "" {
		return errors.New("credcache: publish: empty tag")
	}
	inv.c.Invalidate(tag)
	w, err := inv.send(ctx, message{Tag: tag}, true)
	if w != nil {
		err = inv.await(ctx, w, err)
	}
	if err != nil {
		return fmt.Errorf("credcache: publish: %w", err)
	}
	return nil
}

// send publishes m stamped with the current time and the next sequence
// number. A failed publish still uses its number, so receivers see the gap
// and flush: the message may have been an invalidation. With confirm, the
// returned waiter (nil when no replica is to confirm) is registered before the
// message leaves, so no confirmation can arrive unseen; it is returned with a
// failed publish too, for await to send it again.
func (inv *Invalidator) send(ctx context.Context, m message, confirm bool) (*waiter, error) {
	inv.sendMu.Lock()
	defer inv.sendMu.Unlock()
	m.From, m.Seq = inv.id, inv.seq.Add(1)
	var w *waiter
	if confirm {
		w = inv.expect(m.Seq, m.Tag)
	}
	err := inv.publish(ctx, m)
	if w != nil {
		w.sent = err == nil
	}
	return w, err
}

// publish stamps m with the time and whether this replica confirms invalidations, and
// publishes it.
//
// A replica confirms while it hears the channel, and while it may serve stale entries
// (serve_cached) even when it does not, since it may serve the very entry an
// invalidation is about. One that says it does not (fail_closed, hearing nothing)
// answers nothing from its cache, so publishers stop waiting for it; it then closes the
// gate, so that its cache is trusted again only after a message saying it confirms is
// heard back (see trust). The gate closes before Acks is decided: trust cannot come back
// in between.
func (inv *Invalidator) publish(ctx context.Context, m message) error {
	m.At = inv.now().UnixNano()
	gated := !m.Re && !inv.local && !inv.mute
	var prev uint64
	if gated {
		prev = inv.gate.Swap(m.Seq) // send holds sendMu: numbers only grow
	}
	m.Acks = !inv.local && !inv.mute && (inv.hears() || inv.c.keepsStale())
	if gated && m.Acks {
		inv.gate.CompareAndSwap(m.Seq, prev)
	}
	msg, err := json.Marshal(m)
	if err != nil {
		return err // cannot happen for this type
	}
	return inv.st.Publish(ctx, inv.channel, msg)
}

// hears reports whether this replica heard a message within the trust window.
func (inv *Invalidator) hears() bool {
	inv.confirmMu.Lock()
	defer inv.confirmMu.Unlock()
	return inv.now().Sub(inv.lastHeard) < inv.window
}

// resend publishes w's invalidation again under its first sequence number, bounded by a
// heartbeat interval; it reports whether the store took it.
func (inv *Invalidator) resend(ctx context.Context, w *waiter) bool {
	pctx, cancel := context.WithTimeout(ctx, inv.heartbeat)
	defer cancel()
	inv.confirmMu.Lock()
	to := make([]string, 0, len(w.waiting))
	for id := range w.waiting {
		to = append(to, id)
	}
	inv.confirmMu.Unlock()
	return inv.publish(pctx, message{Tag: w.tag, From: inv.id, Seq: w.seq, Re: true, To: to}) == nil
}

// Peers returns how many other replicas were heard within the trust window and a
// heartbeat (of time this replica heard the channel): those an invalidation published
// now waits for.
func (inv *Invalidator) Peers() int {
	inv.confirmMu.Lock()
	defer inv.confirmMu.Unlock()
	return len(inv.liveLocked())
}

// liveLocked returns the replicas heard within alive(). confirmMu is held.
func (inv *Invalidator) liveLocked() map[string]bool {
	live := map[string]bool{}
	for id, p := range inv.peers {
		if p.acks && inv.silentLocked(p.heard) <= inv.alive() {
			live[id] = true
		}
	}
	return live
}

// silentLocked is how long a replica last heard at heard has been silent, counted only
// while this replica heard the channel: the count stops a heartbeat after the last
// message this one heard (its own heartbeats arrive every interval), since a replica
// that hears nothing cannot tell a silent peer from one it does not hear. confirmMu is
// held.
func (inv *Invalidator) silentLocked(heard time.Time) time.Duration {
	ref := inv.now()
	if deaf := inv.lastHeard.Add(inv.heartbeat); deaf.Before(ref) {
		ref = deaf
	}
	return ref.Sub(heard)
}

// rejoined records that the subscription delivers again: the replicas alive when this
// one stopped hearing the channel count as heard now, and are waited for until they have
// been silent for alive() from here.
func (inv *Invalidator) rejoined() {
	inv.confirmMu.Lock()
	defer inv.confirmMu.Unlock()
	now := inv.now()
	for id, p := range inv.peers {
		if inv.silentLocked(p.heard) <= inv.alive() {
			inv.peers[id] = peerState{heard: now, acks: p.acks}
		}
	}
	inv.lastHeard = now
}

// alive is how long a replica counts as running after it was last heard from.
func (inv *Invalidator) alive() time.Duration { return inv.window + inv.heartbeat }

// expect registers the invalidation seq of tag as waiting for every replica alive now;
// nil when there is none.
func (inv *Invalidator) expect(seq uint64, tag string) *waiter {
	inv.confirmMu.Lock()
	defer inv.confirmMu.Unlock()
	w := &waiter{seq: seq, tag: tag, waiting: inv.liveLocked(), done: make(chan struct{})}
	if len(w.waiting) == 0 {
		return nil
	}
	inv.pending[seq] = w
	return w
}

// await waits until w is confirmed by every replica it waits for, sending it again
// every heartbeat meanwhile and dropping the replicas that go silent (see Publish).
// sendErr is the first publish's error, if it failed; await returns it if no publish of
// w succeeded before the wait ended.
func (inv *Invalidator) await(ctx context.Context, w *waiter, sendErr error) error {
	bound := time.NewTimer(2 * inv.window)
	defer bound.Stop()
	tick := time.NewTicker(inv.heartbeat)
	defer tick.Stop()
	unsent := func() error {
		if w.sent {
			return nil
		}
		return sendErr
	}
	for {
		select {
		case <-w.done:
			return nil // every replica confirmed it (so it was delivered) or no longer needs it
		case <-ctx.Done():
			if n := inv.giveUp(w, "the caller stopped waiting"); n > 0 {
				return fmt.Errorf("%d replicas had not confirmed the invalidation: %w", n, ctx.Err())
			}
			return unsent()
		case <-bound.C:
			inv.giveUp(w, "no confirmation within two trust windows")
			return unsent()
		case <-tick.C:
			if inv.dropSilent(w) {
				return unsent()
			}
			if inv.resend(ctx, w) {
				w.sent = true
			}
		}
	}
}

// dropSilent stops waiting for the replicas of w not heard from for alive(), and reports
// whether w has nothing left to wait for.
func (inv *Invalidator) dropSilent(w *waiter) bool {
	inv.confirmMu.Lock()
	dropped := 0
	for id := range w.waiting {
		if inv.silentLocked(inv.peers[id].heard) > inv.alive() {
			delete(w.waiting, id)
			dropped++
		}
	}
	empty := len(w.waiting) == 0
	if empty {
		inv.removeLocked(w)
	}
	inv.confirmMu.Unlock()
	if dropped > 0 {
		inv.unconfirmed(dropped, "replicas went silent before confirming")
	}
	return empty
}

// giveUp stops waiting for w, and counts and returns the replicas that had not
// confirmed it.
func (inv *Invalidator) giveUp(w *waiter, why string) int {
	inv.confirmMu.Lock()
	n := len(w.waiting)
	inv.removeLocked(w)
	inv.confirmMu.Unlock()
	inv.unconfirmed(n, why)
	return n
}

// removeLocked drops w from pending. confirmMu is held.
func (inv *Invalidator) removeLocked(w *waiter) { delete(inv.pending, w.seq) }

func (inv *Invalidator) unconfirmed(n int, why string) {
	if n == 0 {
		return
	}
	inv.givenUp.Add(int64(n))
	if inv.dropped != nil {
		inv.dropped.Add(float64(n))
	}
	inv.log.Warn("cache invalidation not confirmed by every replica", "channel", inv.channel, "replicas", n, "reason", why)
}

// heard records that the channel delivered m at now, and what m says of its sender:
//   - this replica's own invalidation heard back is echoed: whatever it hears from others
//     from now on was published after it;
//   - a goodbye ends every wait for the sender;
//   - a replica that confirms invalidations is waited for from now on, by the
//     invalidations not yet heard back too: its message came before them on the
//     channel, so it may have trusted its cache before they reach it (a replica that
//     starts, or hears the channel again); and its confirmation of one of ours ends
//     that wait;
//   - a replica saying it does not confirm (it answers nothing from its cache) is not
//     waited for by new invalidations, nor by those already echoed: it said so after
//     they were published, so it cannot serve what they invalidate (see trust). One it
//     said so before may still have reached it once it trusted its cache again, so that
//     wait goes on until it confirms or says so again.
//
// Resent invalidations say nothing of their sender beyond being heard.
func (inv *Invalidator) heard(m message, now time.Time) {
	inv.confirmMu.Lock()
	defer inv.confirmMu.Unlock()
	inv.lastHeard = now
	if inv.local || m.From == "" {
		return
	}
	if m.From == inv.id {
		if w, ok := inv.pending[m.Seq]; ok && m.Tag != "" {
			w.echoed = true
		}
		return
	}
	if m.Re {
		return
	}
	if m.Bye {
		delete(inv.peers, m.From)
		for _, w := range inv.pending {
			inv.confirmedLocked(w, m.From)
		}
		return
	}
	if _, known := inv.peers[m.From]; !known && len(inv.peers) >= maxSenders {
		clear(inv.peers) // replicas come and go; the live ones are heard again within a heartbeat
	}
	inv.peers[m.From] = peerState{heard: now, acks: m.Acks}
	if to, seq, ok := parseAck(m.Ack); ok && to == inv.id {
		if w, ok := inv.pending[seq]; ok {
			inv.confirmedLocked(w, m.From)
		}
	}
	for _, w := range inv.pending {
		switch {
		case m.Acks && !w.echoed:
			w.waiting[m.From] = true // no confirmation comes before the echo
		case !m.Acks && w.echoed:
			inv.confirmedLocked(w, m.From)
		}
	}
}

// confirmedLocked records from's confirmation of w. confirmMu is held.
func (inv *Invalidator) confirmedLocked(w *waiter, from string) {
	delete(w.waiting, from)
	if len(w.waiting) == 0 {
		delete(inv.pending, w.seq)
		close(w.done)
	}
}

// ackOf names the invalidation m for its confirmation.
func ackOf(m message) string { return m.From + "/" + strconv.FormatUint(m.Seq, 10) }

func parseAck(s string) (from string, seq uint64, ok bool) {
	from, n, found := strings.Cut(s, "/")
	if !found || from == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return from, seq, err == nil
}

// confirm sends the confirmations queued by apply until ctx is done. Each send is
// bounded by the heartbeat interval, like a heartbeat.
func (inv *Invalidator) confirm(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ack := <-inv.acks:
			pctx, cancel := context.WithTimeout(ctx, inv.heartbeat)
			_, err := inv.send(pctx, message{Ack: ack}, false)
			cancel()
			if err != nil && ctx.Err() == nil {
				inv.log.Warn("invalidation confirmation failed", "channel", inv.channel, "err", err)
			}
		}
	}
}

// bye tells the other replicas to stop waiting for this one's confirmations.
func (inv *Invalidator) bye() {
	ctx, cancel := context.WithTimeout(context.Background(), inv.heartbeat)
	defer cancel()
	_, _ = inv.send(ctx, message{Bye: true}, false) // best effort: they stop waiting once it is silent anyway
}

// Trusted reports whether the cache may serve Hits: the subscription has delivered a
// message (a heartbeat at least) within the trust window, and the other replicas wait
// for this one's confirmations (see trust).
func (inv *Invalidator) Trusted() bool { return inv.c.Trusted() }

// Ready returns a channel that is closed once Run has subscribed for the first time
// and the cache is trusted: invalidations published after that reach this replica, and
// the other replicas wait for its confirmations. (For a Local or announcing
// Invalidator: once subscribed.)
func (inv *Invalidator) Ready() <-chan struct{} { return inv.ready }

// Run subscribes to the channel and applies invalidations until ctx is
// done, then returns nil after its goroutines have stopped. It flushes the
// cache on every (re)subscription, since messages published while it was
// not subscribed are lost. When subscribing fails it retries every
// heartbeat interval; it returns an error only when the store is closed.
func (inv *Invalidator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if !inv.mute {
		wg.Go(func() { inv.beat(ctx) })
	}
	if !inv.local && !inv.mute {
		wg.Go(func() { inv.confirm(ctx) })
		defer inv.bye() // after the loops above stopped sending
	}
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
		inv.subscribed("subscribed")
		if inv.local || inv.mute {
			inv.markReady() // else once the cache is trusted (see trust)
		}
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
			inv.subscribed("messages may have been lost")
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
		now := inv.now()
		inv.heard(message{}, now)
		inv.trust(message{}, now)
		return
	}
	if m.Tag != "" {
		inv.c.Invalidate(m.Tag)
	}
	if !m.Re && inv.lost(m) {
		inv.resync("a message from another replica was lost")
	}
	now := inv.now()
	inv.heard(m, now)
	// Every numbered invalidation is confirmed, an announcer's (which confirms nothing
	// itself) included.
	if m.Tag != "" && m.From != "" && m.From != inv.id && !inv.local && !inv.mute && (!m.Re || slices.Contains(m.To, inv.id)) {
		select {
		case inv.acks <- ackOf(m): // applied above: confirm it
		default: // the publisher stops waiting after its bound
		}
	}
	inv.trust(m, now)
	if m.Tag != "" && !m.Re && inv.lag != nil {
		inv.lag.Observe(max(0, now.Sub(time.Unix(0, m.At)).Seconds()))
	}
}

// lost records m's sequence number and reports whether a message from its
// sender was missed before it.
func (inv *Invalidator) lost(m message) bool {
	if m.From == "" || m.From == inv.id { // its own failed publishes are no lost invalidations
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

// subscribed handles a confirmed (re)subscription: the store answered (onSub); the
// replicas alive when this one stopped hearing count as heard now (rejoined); sequence
// tracking starts again and every entry is re-verified, since messages published
// meanwhile are lost (resync); and the cache is trusted again only once the others wait
// for this replica (regate).
func (inv *Invalidator) subscribed(reason string) {
	inv.onSub()
	inv.rejoined()
	clear(inv.senders)
	inv.resync(reason)
	inv.regate()
}

// resync re-verifies every entry (see Cache.Reverify): whatever the cache held may have
// missed invalidations.
func (inv *Invalidator) resync(reason string) {
	inv.c.Reverify()
	inv.log.Info("credential cache flushed", "reason", reason)
}

// regate closes the gate (see trust) on a (re)subscription: messages published before it
// are lost to this replica, and the other replicas may have stopped waiting for it. It
// asks beat for a message at once.
func (inv *Invalidator) regate() {
	if inv.local || inv.mute {
		return // always trusted; or no cache to trust
	}
	inv.gate.Store(inv.seq.Load() + 1)
	inv.hello()
}

// hello asks beat for a heartbeat now.
func (inv *Invalidator) hello() {
	select {
	case inv.helloNow <- struct{}{}:
	default: // one is asked for already
	}
}

// trust renews the cache's trust on hearing m at now, unless the gate is closed.
//
// The gate makes trust come back only once the other replicas wait for this one: after
// it said it does not confirm invalidations, after a (re)subscription, and after its
// trust lapsed, its cache is trusted again only when it hears back a message of its own,
// sent since, that says it confirms. Every replica that heard that message waits for
// this one's confirmations from then on (an invalidation already under way included,
// see heard), and every invalidation published before it on the channel has been applied
// here. A cache whose trust has lapsed is re-verified as trust returns: the
// invalidations it missed are behind this message, or lost. Only Run's goroutine renews
// trust, so nothing renews it between the checks and trustFor.
func (inv *Invalidator) trust(m message, now time.Time) {
	if inv.local || inv.mute {
		inv.c.trustFor(now, inv.window)
		return
	}
	if g := inv.gate.Load(); g != 0 {
		if m.From != inv.id || m.Re || !m.Acks || m.Seq < g || !inv.gate.CompareAndSwap(g, 0) {
			return
		}
	} else if !inv.c.Trusted() {
		// Lapsed while this replica said nothing (it could not send): others may have
		// stopped waiting for it.
		inv.gate.CompareAndSwap(0, inv.seq.Load()+1)
		inv.hello()
		return
	}
	if !inv.c.Trusted() {
		inv.c.Reverify()
	}
	inv.c.trustFor(now, inv.window)
	inv.markReady()
}

// markReady closes Ready's channel, once.
func (inv *Invalidator) markReady() { inv.readyOnce.Do(func() { close(inv.ready) }) }

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
		case <-inv.helloNow:
		}
		pctx, cancel := context.WithTimeout(ctx, inv.heartbeat)
		_, err := inv.send(pctx, message{}, false)
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

// Announce publishes invalidations of tags on channel for a process that keeps no cache
// of its own (the CLI writing to the store directly), and waits, as Publish does, until
// every running replica has confirmed each. It first listens to the channel for listen to
// learn which replicas run (each sends a heartbeat at least every 250ms by default). It
// sends no heartbeat and confirms nothing itself, so no replica ever waits for it. It
// returns how many replicas stopped being waited for without confirming (see Publish).
func Announce(ctx context.Context, st store.Store, channel string, listen time.Duration, tags ...string) (unconfirmed int, err error) {
	c, err := New[struct{}](Options{MaxEntries: 1, TTL: time.Minute})
	if err != nil {
		return 0, fmt.Errorf("credcache: announce: %w", err)
	}
	inv, err := NewInvalidator(c, st, InvalidatorOptions{Channel: channel, mute: true})
	if err != nil {
		return 0, fmt.Errorf("credcache: announce: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- inv.Run(rctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-inv.Ready():
	case err := <-done:
		if err == nil {
			err = ctx.Err()
		}
		return 0, fmt.Errorf("credcache: announce: %w", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("credcache: announce: %w", ctx.Err())
	}
	t := time.NewTimer(listen)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return 0, fmt.Errorf("credcache: announce: %w", ctx.Err())
	}
	var errs []error
	for _, tag := range tags {
		if err := inv.Publish(ctx, tag); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return int(inv.givenUp.Load()), fmt.Errorf("credcache: announce: %w", err)
	}
	return int(inv.givenUp.Load()), nil
}
