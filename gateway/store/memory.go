package store

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// minSweep is the map size below which Memory never sweeps expired keys.
const minSweep = 1024

// Memory is a Store held in one process's memory, for single-replica
// deployments and tests. Expiry follows the clock given to NewMemory.
// Publish delivers to subscribers in the same Memory only, and never
// blocks: see Subscription for the buffer bound. Memory is safe for
// concurrent use. Its zero value is not usable; call NewMemory.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	data    map[string]entry
	subs    map[string]map[*Subscription]struct{}
	closed  bool
	sweepAt int // sweep expired entries when len(data) reaches this
}

// entry is a stored value and its expiry; a zero expires means none.
type entry struct {
	val     []byte
	expires time.Time
}

// live reports whether e has not expired at now.
func (e entry) live(now time.Time) bool {
	return e.expires.IsZero() || now.Before(e.expires)
}

// NewMemory returns an empty Memory whose TTLs follow now. A nil now means
// time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		data:    make(map[string]entry),
		subs:    make(map[string]map[*Subscription]struct{}),
		sweepAt: minSweep,
	}
}

// Ping returns ErrClosed after Close, the context's error if it is done,
// and nil otherwise.
func (m *Memory) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.check(ctx, "ping")
}

// Get returns a copy of the value of key, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "get"); err != nil {
		return nil, err
	}
	e, ok := m.lookup(key)
	if !ok {
		return nil, ErrNotFound
	}
	return clone(e.val), nil
}

// Set stores a copy of val under key with the given ttl (0 means none).
func (m *Memory) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "set"); err != nil {
		return err
	}
	m.put(key, clone(val), ttl)
	return nil
}

// SetNX stores a copy of val under key only if key is absent or expired,
// and reports whether it did.
func (m *Memory) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "setnx"); err != nil {
		return false, err
	}
	if _, ok := m.lookup(key); ok {
		return false, nil
	}
	m.put(key, clone(val), ttl)
	return true, nil
}

// Delete removes keys; absent keys are ignored.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "delete"); err != nil {
		return err
	}
	for _, k := range keys {
		delete(m.data, k)
	}
	return nil
}

// Incr increments the decimal integer under key, creating it with ttl when
// absent. It returns an error, and changes nothing, when the value is not
// a 64-bit integer or would overflow.
func (m *Memory) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "incr"); err != nil {
		return 0, err
	}
	e, ok := m.lookup(key)
	if !ok {
		m.put(key, []byte("1"), ttl)
		return 1, nil
	}
	n, err := strconv.ParseInt(string(e.val), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: incr: value is not an integer: %w", err)
	}
	if n == math.MaxInt64 {
		return 0, fmt.Errorf("store: incr: increment would overflow")
	}
	n++
	e.val = strconv.AppendInt(nil, n, 10)
	m.data[key] = e // keeps e.expires: the ttl applies only on creation
	return n, nil
}

// Publish queues a copy of msg for every current subscriber of channel,
// without blocking; see Subscription for what happens when one is full.
func (m *Memory) Publish(ctx context.Context, channel string, msg []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "publish"); err != nil {
		return err
	}
	// Each subscriber gets its own copy, so one consumer mutating its
	// message cannot corrupt another's. Sending under m.mu is what makes
	// closing msgs in unsubscribe safe.
	for sub := range m.subs[channel] {
		sub.deliver(clone(msg))
	}
	return nil
}

// Subscribe registers a subscriber on channel. It is active as soon as
// Subscribe returns. A Memory never reconnects, so Reconnected fires only
// when the subscriber's buffer overflows.
func (m *Memory) Subscribe(ctx context.Context, channel string) (*Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "subscribe"); err != nil {
		return nil, err
	}
	sub := newSubscription()
	sub.release = func() error {
		m.unsubscribe(channel, sub)
		return nil
	}
	set := m.subs[channel]
	if set == nil {
		set = make(map[*Subscription]struct{})
		m.subs[channel] = set
	}
	set[sub] = struct{}{}
	sub.watch(ctx)
	return sub, nil
}

// Close drops all data, closes every subscription, and makes later calls
// return ErrClosed. Closing twice returns ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	m.data = nil
	var subs []*Subscription
	for _, set := range m.subs {
		for sub := range set {
			subs = append(subs, sub)
		}
	}
	m.mu.Unlock()

	// Outside the lock: Subscription.Close takes it again in unsubscribe.
	for _, sub := range subs {
		_ = sub.Close() // a Memory subscription's release cannot fail
	}
	return nil
}

// unsubscribe removes sub from channel and closes its message channel.
func (m *Memory) unsubscribe(channel string, sub *Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.subs[channel]
	if _, ok := set[sub]; !ok {
		return
	}
	delete(set, sub)
	if len(set) == 0 {
		delete(m.subs, channel)
	}
	close(sub.msgs)
}

// check returns ErrClosed or the context's error, wrapped for op. m.mu is held.
func (m *Memory) check(ctx context.Context, op string) error {
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// lookup returns the live entry for key, deleting it if it has expired.
// m.mu is held.
func (m *Memory) lookup(key string) (entry, bool) {
	e, ok := m.data[key]
	if !ok {
		return entry{}, false
	}
	if !e.live(m.now()) {
		delete(m.data, key)
		return entry{}, false
	}
	return e, true
}

// put stores val under key, expiring after ttl unless ttl is 0. m.mu is held.
func (m *Memory) put(key string, val []byte, ttl time.Duration) {
	e := entry{val: val}
	if ttl > 0 {
		e.expires = m.now().Add(ttl)
	}
	m.data[key] = e
	if len(m.data) >= m.sweepAt {
		m.sweep()
	}
}

// sweep deletes expired entries. Keys that expire but are never read again
// would otherwise stay forever; doubling the threshold after each sweep
// keeps the cost amortised O(1) per write. m.mu is held.
func (m *Memory) sweep() {
	now := m.now()
	for k, e := range m.data {
		if !e.live(now) {
			delete(m.data, k)
		}
	}
	m.sweepAt = max(2*len(m.data), minSweep)
}

// clone returns a copy of b that shares no memory with it; nil stays
// non-nil so that a stored empty value reads back as empty, not absent.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
