// Package credcache is the gateway's in-process credential cache and its
// cross-replica invalidation.
//
// A Cache maps the hash of a credential (an API key's SHA-256, a token's
// digest) to what the store said about it, so that a request with a cached
// credential makes no store round trip. An Invalidator keeps the caches of
// every replica coherent: it publishes invalidations through the store's
// pub/sub, applies those of every replica, flushes the cache when messages
// may have been lost, and withdraws trust from the cache when its
// subscription has been silent for longer than the cache TTL (docs/api-keys.md).
package credcache

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/metrics"
)

// Result says what Get found.
type Result uint8

const (
	// Miss: nothing usable is cached. Read the store.
	Miss Result = iota
	// Hit: a positive entry, verified less than TTL ago, in a trusted cache.
	// Use it without asking the store.
	Hit
	// NegativeHit: the store recently said this credential is unknown.
	// Refuse it without asking the store.
	NegativeHit
	// Stale: a positive entry that may no longer be current, because it is
	// older than TTL or the cache is not trusted (see Cache.Trusted), but
	// younger than StaleTTL. Treat it as Miss and read the store; use the
	// returned value only if the store is unreachable and the policy is
	// on_store_error: serve_cached.
	Stale
)

// String returns the result's name, e.g. "negative_hit".
func (r Result) String() string {
	switch r {
	case Miss:
		return "miss"
	case Hit:
		return "hit"
	case NegativeHit:
		return "negative_hit"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Options configures New. The zero value is not valid: MaxEntries and TTL
// are required.
type Options struct {
	// MaxEntries bounds the number of positive entries (credentials the
	// store knows). Required, > 0. (store.cache.max_entries)
	MaxEntries int
	// NegativeMaxEntries bounds the number of negative entries, which are
	// kept apart from the positive ones: negative entries are what a flood
	// of made-up credentials creates, and they must never evict a good
	// credential (issue 9, item 14). Default: DefaultNegativeMaxEntries.
	// (store.cache.negative_max_entries)
	NegativeMaxEntries int
	// TTL is how long a positive entry is a Hit. Required, > 0.
	// (store.cache.ttl)
	TTL time.Duration
	// NegativeTTL is how long a negative entry is a NegativeHit. It should
	// be short (seconds), since a negative entry cannot be invalidated by
	// tag. Default 0: PutNegative stores nothing.
	NegativeTTL time.Duration
	// StaleTTL is how long after verification a positive entry stays
	// available as Stale. It must be 0 or >= TTL. Default 0: no stale
	// entries (on_store_error: fail_closed). (store.cache.stale_ttl)
	StaleTTL time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Metrics, when set, counts lookups in authgate_credential_cache_total.
	// Stale counts as a miss, since the caller goes to the store.
	Metrics *metrics.Metrics
}

// validate returns every problem with o at once.
func (o Options) validate() error {
	var errs []error
	if o.MaxEntries <= 0 {
		errs = append(errs, fmt.Errorf("max_entries: must be > 0, got %d", o.MaxEntries))
	}
	if o.TTL <= 0 {
		errs = append(errs, fmt.Errorf("ttl: must be > 0, got %s", o.TTL))
	}
	if o.NegativeMaxEntries < 0 {
		errs = append(errs, fmt.Errorf("negative_max_entries: must be >= 0, got %d", o.NegativeMaxEntries))
	}
	if o.NegativeTTL < 0 {
		errs = append(errs, fmt.Errorf("negative_ttl: must be >= 0, got %s", o.NegativeTTL))
	}
	if o.StaleTTL != 0 && o.StaleTTL < o.TTL {
		errs = append(errs, fmt.Errorf("stale_ttl: must be 0 or >= ttl (%s), got %s", o.TTL, o.StaleTTL))
	}
	return errors.Join(errs...)
}

// DefaultNegativeMaxEntries is the default of Options.NegativeMaxEntries.
const DefaultNegativeMaxEntries = 10_000

// minShardEntries is the smallest per-shard capacity worth a shard of its
// own: below it, per-shard LRU would evict far from the global LRU order.
const minShardEntries = 256

// maxShards bounds the lock striping; 64 shards keep contention negligible
// at the core counts a gateway replica runs on.
const maxShards = 64

// Cache is a bounded, sharded cache of credential verifications keyed by a
// 32-byte credential hash. It is safe for concurrent use; a Hit takes one
// shard's mutex and does not allocate. Its zero value is not usable; call
// New.
//
// Positive and negative entries live in two separate sets of shards, each
// with its own bound (MaxEntries, NegativeMaxEntries): made-up credentials
// fill and evict only the negative side. Each shard evicts its least
// recently used entry when full, and the shard capacities add up to exactly
// the bound, so the cache never holds more than MaxEntries positive and
// NegativeMaxEntries negative entries. (LRU order is therefore per shard, which is a
// close approximation of global LRU order for uniformly distributed
// hashes.)
//
// Positive entries carry tags, such as "key:<id>" and "user:<id>", and
// Invalidate(tag) removes every entry carrying the tag.
type Cache[V any] struct {
	shards   []shard[V] // positive entries
	neg      []shard[V] // negative entries
	ttl      int64      // nanoseconds
	negTTL   int64
	staleTTL int64 // >= ttl, or 0
	now      func() time.Time
	// base anchors the cache's internal time: nanoseconds since base, read
	// by clock. With the default clock that is a monotonic reading, which
	// costs one clock read instead of two and ignores wall-clock jumps.
	base  time.Time
	clock func() int64

	// epoch counts Invalidate and Flush calls; see PutIfCurrent.
	epoch atomic.Uint64
	// trustUntil is the time (see base) until which positive entries may be
	// Hits. An Invalidator extends it whenever it hears from its
	// subscription; without one it is MaxInt64 (always trusted).
	trustUntil atomic.Int64
	// gen counts Reverify calls: a positive entry stored under an older gen is never a
	// Hit, only Stale, until it is verified again.
	gen atomic.Uint64

	hit, miss, negHit prometheus.Counter // nil without Metrics
}

// shard is one lock stripe: a map, an LRU ring and a tag index.
type shard[V any] struct {
	mu   sync.Mutex
	m    map[[32]byte]*entry[V]
	tags map[string]map[*entry[V]]struct{}
	lru  entry[V] // sentinel: lru.next is the most recently used entry
	n    int
	cap  int
	seq  uint64   // counts pushFront calls
	_    [64]byte // keeps neighbouring shards' mutexes off one cache line
}

// entry is one cached verification.
type entry[V any] struct {
	key        [32]byte
	v          V
	at         int64  // verified at (see Cache.base)
	gen        uint64 // Cache.gen when verified
	seq        uint64 // shard.seq when last moved to the front
	tags       []string
	prev, next *entry[V]
}

// New returns an empty Cache configured by opts, or an error naming every
// invalid option.
func New[V any](opts Options) (*Cache[V], error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("credcache: options: %w", err)
	}
	if opts.NegativeMaxEntries == 0 {
		opts.NegativeMaxEntries = DefaultNegativeMaxEntries
	}
	c := &Cache[V]{
		shards:   newShards[V](opts.MaxEntries),
		neg:      newShards[V](opts.NegativeMaxEntries),
		ttl:      int64(opts.TTL),
		negTTL:   int64(opts.NegativeTTL),
		staleTTL: int64(opts.StaleTTL),
		now:      opts.Now,
	}
	if c.now == nil {
		c.now = time.Now
		c.clock = c.sinceBase
	} else {
		c.clock = c.fromNow
	}
	c.base = c.now()
	c.trustUntil.Store(math.MaxInt64)
	if m := opts.Metrics; m != nil {
		// Resolved once: WithLabelValues on every lookup would hash the label.
		c.hit = m.CredentialCache.WithLabelValues("hit")
		c.miss = m.CredentialCache.WithLabelValues("miss")
		c.negHit = m.CredentialCache.WithLabelValues("negative_hit")
	}
	return c, nil
}

// newShards returns the shards of a side holding at most total entries.
func newShards[V any](total int) []shard[V] {
	n := min(maxShards, max(1, total/minShardEntries))
	shards := make([]shard[V], n)
	for i := range shards {
		s := &shards[i]
		// Distribute the remainder so that the capacities sum to total.
		s.cap = total / n
		if i < total%n {
			s.cap++
		}
		s.reset()
	}
	return shards
}

// shard returns the positive stripe for h.
func (c *Cache[V]) shard(h *[32]byte) *shard[V] { return pick(c.shards, h) }

// negShard returns the negative stripe for h.
func (c *Cache[V]) negShard(h *[32]byte) *shard[V] { return pick(c.neg, h) }

// pick returns the stripe of shards for h. Hashes are uniformly distributed,
// so the top bits of a multiply by the leading word spread them evenly.
func pick[V any](shards []shard[V], h *[32]byte) *shard[V] {
	x := uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24 |
		uint64(h[4])<<32 | uint64(h[5])<<40 | uint64(h[6])<<48 | uint64(h[7])<<56
	hi, _ := bits.Mul64(x*0x9e3779b97f4a7c15, uint64(len(shards)))
	return &shards[hi]
}

// Get looks up the credential hash h. It returns the value with Hit and
// Stale, and the zero V otherwise; see Result for what each means. Expired
// entries are removed as they are found.
//
// While the cache is not trusted (see Trusted), a positive entry is never a
// Hit: it is Stale when younger than StaleTTL and a Miss otherwise, so the
// caller re-reads the store. NegativeHit is unaffected, because refusing an
// unknown credential is always safe.
func (c *Cache[V]) Get(h [32]byte) (v V, res Result) {
	now := c.clock()
	s := c.shard(&h)
	s.mu.Lock()
	e := s.m[h]
	if e == nil {
		s.mu.Unlock()
		return v, c.getNegative(&h, now)
	}
	age := now - e.at
	switch {
	case age < c.ttl && now < c.trustUntil.Load() && e.gen == c.gen.Load():
		s.touch(e)
		v = e.v
		s.mu.Unlock()
		c.count(c.hit)
		return v, Hit
	case age < c.staleTTL:
		// Not touched: an entry that is only a fallback should be the
		// first to go when the shard is full.
		v = e.v
		s.mu.Unlock()
		c.count(c.miss)
		return v, Stale
	}
	s.remove(e)
	s.mu.Unlock()
	c.count(c.miss)
	return v, Miss
}

// getNegative looks h up among the negative entries: NegativeHit or Miss.
func (c *Cache[V]) getNegative(h *[32]byte, now int64) Result {
	s := c.negShard(h)
	s.mu.Lock()
	e := s.m[*h]
	switch {
	case e == nil:
		s.mu.Unlock()
		c.count(c.miss)
		return Miss
	case now-e.at < c.negTTL:
		s.touch(e)
		s.mu.Unlock()
		c.count(c.negHit)
		return NegativeHit
	}
	s.remove(e)
	s.mu.Unlock()
	c.count(c.miss)
	return Miss
}

// count increments ctr unless metrics are off.
func (c *Cache[V]) count(ctr prometheus.Counter) {
	if ctr != nil {
		ctr.Inc()
	}
}

// Put caches v for h as verified now, replacing any entry for h, and tags
// it so that Invalidate(tag) removes it. Put cannot tell whether an
// invalidation arrived while v was being read from the store; use
// PutIfCurrent for values read from a shared store.
func (c *Cache[V]) Put(h [32]byte, v V, tags ...string) {
	c.put(h, v, false, tags, 0, false)
}

// Epoch returns a number that changes whenever Invalidate or Flush runs.
// Take it before reading the store and pass it to PutIfCurrent.
func (c *Cache[V]) Epoch() uint64 { return c.epoch.Load() }

// PutIfCurrent is Put, except that it stores nothing and returns false if
// Invalidate or Flush ran since Epoch returned epoch. This closes the race
// in which a replica reads a key, the key is revoked and the invalidation
// applied, and the replica then caches what it read before the revocation.
// Any invalidation counts, not only one matching tags: they are rare, and a
// refused Put costs one more store read.
func (c *Cache[V]) PutIfCurrent(epoch uint64, h [32]byte, v V, tags ...string) bool {
	return c.put(h, v, false, tags, epoch, true)
}

// PutNegative records that the store does not know h, for NegativeTTL. It
// does nothing when NegativeTTL is 0.
func (c *Cache[V]) PutNegative(h [32]byte) {
	if c.negTTL == 0 {
		return
	}
	var zero V
	c.put(h, zero, true, nil, 0, false)
}

// PutNegativeIfCurrent is PutNegative, except that it stores nothing and returns false
// if Invalidate or Flush ran since Epoch returned epoch: a credential stored while the
// store said "unknown" (the bootstrap key at start, say) must not be refused for
// NegativeTTL by an answer that is already out of date.
func (c *Cache[V]) PutNegativeIfCurrent(epoch uint64, h [32]byte) bool {
	if c.negTTL == 0 {
		return false
	}
	var zero V
	return c.put(h, zero, true, nil, epoch, true)
}

// put inserts an entry, checking the epoch under the shard lock when
// checkEpoch is set. Invalidate and Flush advance the epoch before they
// lock any shard, so an insert either precedes their sweep of its shard
// (and is swept) or sees the new epoch (and is refused).
//
// An entry for h on the other side (positive or negative) is removed first,
// so that h is never on both.
func (c *Cache[V]) put(h [32]byte, v V, negative bool, tags []string, epoch uint64, checkEpoch bool) bool {
	// gen is read before the epoch check: a Reverify that bumps it also bumped the epoch
	// first, so either this put is refused or its value was read after that Reverify.
	e := &entry[V]{key: h, v: v, tags: slices.Clone(tags), gen: c.gen.Load()}
	e.at = c.clock()
	s, other := c.shard(&h), c.negShard(&h)
	if negative {
		s, other = other, s
	}
	other.mu.Lock()
	if old := other.m[h]; old != nil {
		other.remove(old)
	}
	other.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if checkEpoch && c.epoch.Load() != epoch {
		return false
	}
	if old := s.m[h]; old != nil {
		s.remove(old)
	}
	for s.n >= s.cap {
		s.remove(s.lru.prev) // least recently used
	}
	s.m[h] = e
	s.n++
	s.pushFront(e)
	for _, t := range e.tags {
		set := s.tags[t]
		if set == nil {
			set = make(map[*entry[V]]struct{}, 1)
			s.tags[t] = set
		}
		set[e] = struct{}{}
	}
	return true
}

// Invalidate removes every entry tagged tag and returns how many it
// removed.
func (c *Cache[V]) Invalidate(tag string) int {
	c.epoch.Add(1)
	removed := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for e := range s.tags[tag] {
			s.remove(e)
			removed++
		}
		s.mu.Unlock()
	}
	return removed
}

// Reverify makes every positive entry Stale until it is verified again (Put): it is no
// longer a Hit, so the caller re-reads the store, but it stays a fallback for
// serve_cached while the store does not answer. Negative entries are removed. Use it
// when invalidations may have been lost: the store decides again, and a store that is
// down meanwhile costs no credential that was good.
func (c *Cache[V]) Reverify() {
	c.epoch.Add(1) // first: a put that read the store before this is refused (see put)
	c.gen.Add(1)
	for i := range c.neg {
		s := &c.neg[i]
		s.mu.Lock()
		s.reset()
		s.mu.Unlock()
	}
}

// Flush removes every entry, positive and negative.
func (c *Cache[V]) Flush() {
	c.epoch.Add(1)
	for _, side := range [2][]shard[V]{c.shards, c.neg} {
		for i := range side {
			s := &side[i]
			s.mu.Lock()
			s.reset()
			s.mu.Unlock()
		}
	}
}

// Len returns the number of positive entries (at most MaxEntries), expired
// ones included until they are looked up or evicted.
func (c *Cache[V]) Len() int { return count(c.shards) }

// NegativeLen returns the number of negative entries (at most
// NegativeMaxEntries), expired ones included until they are looked up or
// evicted.
func (c *Cache[V]) NegativeLen() int { return count(c.neg) }

// count returns the number of entries in shards.
func count[V any](shards []shard[V]) int {
	n := 0
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Trusted reports whether positive entries may be Hits. A Cache without an
// Invalidator is always trusted. With one, it is trusted while the
// Invalidator's subscription has been heard from within the last TTL.
func (c *Cache[V]) Trusted() bool {
	return c.clock() < c.trustUntil.Load()
}

// keepsStale reports whether entries stay a fallback (Stale) after they stop being Hits:
// a replica that does not hear the channel may still answer from them while the store
// does not (serve_cached).
func (c *Cache[V]) keepsStale() bool { return c.staleTTL > 0 }

// trustFor makes the cache trusted until at plus d. The Invalidator calls
// it from one goroutine.
func (c *Cache[V]) trustFor(at time.Time, d time.Duration) {
	c.trustUntil.Store(int64(at.Sub(c.base)) + int64(d))
}

// sinceBase is the default clock: monotonic time since base.
func (c *Cache[V]) sinceBase() int64 { return int64(time.Since(c.base)) }

// fromNow is the clock for an injected Now.
func (c *Cache[V]) fromNow() int64 { return int64(c.now().Sub(c.base)) }

// reset empties s. s.mu is held, or s is not yet shared.
func (s *shard[V]) reset() {
	s.m = make(map[[32]byte]*entry[V], min(s.cap, 1024))
	s.tags = make(map[string]map[*entry[V]]struct{})
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	s.n = 0
}

// pushFront links e as the most recently used entry. s.mu is held.
func (s *shard[V]) pushFront(e *entry[V]) {
	e.prev = &s.lru
	e.next = s.lru.next
	e.next.prev = e
	s.lru.next = e
	s.seq++
	e.seq = s.seq
}

// touch marks e as the most recently used entry. s.mu is held.
//
// An entry still among the most recently moved quarter of the shard is
// left where it is: it is far from eviction either way, and not relinking
// it spares the hit path four pointer writes to cache lines that other
// cores also write. Eviction order is therefore LRU up to that quarter.
func (s *shard[V]) touch(e *entry[V]) {
	if s.seq-e.seq < uint64(s.cap/4) {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	s.pushFront(e)
}

// remove unlinks e from the map, the LRU ring and the tag index. s.mu is
// held.
func (s *shard[V]) remove(e *entry[V]) {
	delete(s.m, e.key)
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	s.n--
	for _, t := range e.tags {
		set := s.tags[t]
		delete(set, e)
		if len(set) == 0 {
			delete(s.tags, t)
		}
	}
}
