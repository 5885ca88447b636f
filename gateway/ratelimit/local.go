package ratelimit

import (
	"container/list"
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxEntries is the default for LocalOptions.MaxEntries.
const DefaultMaxEntries = 100_000

// tokenEpsilon absorbs floating-point error in token counts, so that a
// bucket refilled to 3.9999999999 tokens reports 4 remaining requests.
const tokenEpsilon = 1e-9

// LocalOptions configures [NewLocal]. The zero value is ready to use.
type LocalOptions struct {
	// MaxEntries bounds the number of keys whose state is kept. When a new
	// key would exceed it, one key is forgotten: among the few least
	// recently used, one whose bucket is full again (nothing is lost), else
	// the one with the most of its allowance left (which starts again with a
	// full allowance), so a used-up bucket is kept longest.
	// Default: 100000.
	MaxEntries int
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Local is a [Limiter] that keeps its state in this process, one
// golang.org/x/time/rate.Limiter per key, in a set bounded by
// LocalOptions.MaxEntries that evicts the least recently used key. Each
// gateway replica counts on its own. Local is safe for concurrent use.
type Local struct {
	now        func() time.Time
	maxEntries int

	mu      sync.Mutex
	entries map[string]*list.Element // of *localEntry
	lru     list.List                // front: most recently used
}

// localEntry is the state of one key.
type localEntry struct {
	key   string
	limit Limit
	lim   *rate.Limiter
}

// NewLocal returns a Local limiter configured by o.
func NewLocal(o LocalOptions) *Local {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Local{
		now:        o.Now,
		maxEntries: o.MaxEntries,
		entries:    make(map[string]*list.Element),
	}
}

// Allow reports whether one more request for key is allowed under l now,
// and takes it from the allowance if so. A refused request takes nothing.
// When l differs from the limit last used for key (a config reload), the
// new rate and burst apply from now on, keeping what has been used. The
// only error is one wrapping [ErrInvalidLimit]; ctx is not used.
func (lc *Local) Allow(_ context.Context, key string, l Limit) (Result, error) {
	if err := l.validate(); err != nil {
		return Result{}, err
	}
	now := lc.now()

	// One lock around lookup and decision keeps Remaining and RetryAfter
	// consistent with the decision even under concurrent calls for a key.
	lc.mu.Lock()
	defer lc.mu.Unlock()
	e := lc.entry(key, l, now)
	allowed := e.lim.AllowN(now, 1)
	tokens := e.lim.TokensAt(now)
	return result(l, allowed, tokens), nil
}

// Mirror sets key's bucket under l to hold remaining requests, as a shared limiter last
// reported, so that answering locally later (see [Fallback]) starts from there instead
// of a full allowance. An invalid l is ignored.
func (lc *Local) Mirror(key string, l Limit, remaining int) {
	if l.validate() != nil {
		return
	}
	want := float64(min(max(remaining, 0), l.Requests))
	now := lc.now()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	e := lc.entry(key, l, now)
	tokens := e.lim.TokensAt(now)
	switch {
	case tokens-want >= 1:
		e.lim.AllowN(now, int(tokens-want)) // take what the shared limiter says is used
	case want-tokens >= 1:
		// More left than here (refilled elsewhere, or a new bucket's debt): start again.
		e.lim = rate.NewLimiter(rateOf(l), l.Requests)
		e.lim.AllowN(now, l.Requests-int(want))
	}
}

// Len returns the number of keys whose state is kept.
func (lc *Local) Len() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.lru.Len()
}

// entry returns the state of key, created or updated for l, and marks it
// as the most recently used. lc.mu must be held.
func (lc *Local) entry(key string, l Limit, now time.Time) *localEntry {
	if el, ok := lc.entries[key]; ok {
		lc.lru.MoveToFront(el)
		e := el.Value.(*localEntry)
		if e.limit != l {
			e.lim.SetLimitAt(now, rateOf(l))
			e.lim.SetBurstAt(now, l.Requests)
			e.limit = l
		}
		return e
	}
	if lc.lru.Len() >= lc.maxEntries {
		lc.evict(now)
	}
	e := &localEntry{key: key, limit: l, lim: rate.NewLimiter(rateOf(l), l.Requests)}
	lc.entries[key] = lc.lru.PushFront(e)
	return e
}

// evictScan is how many of the least recently used keys evict looks at for one
// whose bucket is full.
const evictScan = 8

// evict forgets one key to make room. Among the evictScan least recently used keys it
// forgets the one whose bucket holds the largest share of its allowance: a refilled one
// first (forgetting it loses nothing, since a new bucket starts full), else the one
// whose caller loses least by starting again with a full allowance; ties go to the
// least recently used. So a flood of new keys (one per client address or email at
// login), each of which has used one request, evicts its own kind and never resets a
// bucket that is used up (issue 9, item 14). lc.mu must be held.
func (lc *Local) evict(now time.Time) {
	victim := lc.lru.Back()
	best := -1.0
	el := victim
	for range evictScan {
		if el == nil {
			break
		}
		e := el.Value.(*localEntry)
		tokens := e.lim.TokensAt(now)
		if tokens >= float64(e.limit.Requests)-tokenEpsilon {
			victim = el
			break
		}
		if share := tokens / float64(e.limit.Requests); share > best+tokenEpsilon {
			victim, best = el, share
		}
		el = el.Prev()
	}
	lc.lru.Remove(victim)
	delete(lc.entries, victim.Value.(*localEntry).key)
}

// rateOf returns l's refill rate in requests per second.
func rateOf(l Limit) rate.Limit {
	return rate.Limit(float64(l.Requests) / l.Per.Seconds())
}

// result builds the Result for a bucket of l that holds tokens after the
// decision.
func result(l Limit, allowed bool, tokens float64) Result {
	n := float64(l.Requests)
	tokens = min(tokens, n)
	// nsPerToken is the refill time of one request.
	nsPerToken := float64(l.Per) / n
	r := Result{
		Allowed:   allowed,
		Limit:     l.Requests,
		Remaining: max(0, int(math.Floor(tokens+tokenEpsilon))),
	}
	if n-tokens > tokenEpsilon {
		r.ResetAfter = ceilDuration((n - tokens) * nsPerToken)
	}
	if !allowed {
		r.RetryAfter = ceilDuration((1 - tokens) * nsPerToken)
	}
	return r
}
