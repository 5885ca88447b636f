package apikey

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hygiene flags, shown on each key and accepted as list filters.
const (
	FlagStale    = "stale"
	FlagUnused   = "unused"
	FlagExpiring = "expiring"
)

// Hygiene holds the thresholds of the hygiene flags (api_keys.hygiene). A zero threshold
// turns its flag off. Flags apply to active keys only: a revoked or expired key has none.
type Hygiene struct {
	// MaxAge: a key created at least MaxAge ago is stale. Rotation makes a new key, so the
	// age of a rotated key counts from its rotation; a refresh does not reset it (the
	// secret stays the same).
	MaxAge time.Duration
	// UnusedAfter: a key last used at least UnusedAfter ago, or never used and created at
	// least UnusedAfter ago, is unused.
	UnusedAfter time.Duration
	// ExpiringWithin: a key that expires within ExpiringWithin (and has not yet) is expiring.
	ExpiringWithin time.Duration
}

// Stale reports whether k is active and at least MaxAge old at now.
func (h Hygiene) Stale(k Key, now time.Time) bool {
	return h.MaxAge > 0 && k.Status(now) == StatusActive && !now.Before(k.CreatedAt.Add(h.MaxAge))
}

// Unused reports whether k is active and was not used (or, never used, was created) at
// least UnusedAfter before now.
func (h Hygiene) Unused(k Key, now time.Time) bool {
	if h.UnusedAfter <= 0 || k.Status(now) != StatusActive {
		return false
	}
	since := k.CreatedAt
	if k.LastUsedAt != nil && k.LastUsedAt.After(since) {
		since = *k.LastUsedAt
	}
	return !now.Before(since.Add(h.UnusedAfter))
}

// Expiring reports whether k is active and expires within ExpiringWithin of now.
func (h Hygiene) Expiring(k Key, now time.Time) bool {
	return h.ExpiringWithin > 0 && k.Status(now) == StatusActive && k.ExpiresAt != nil &&
		!k.ExpiresAt.After(now.Add(h.ExpiringWithin))
}

// Flags lists k's hygiene flags at now, in the order stale, unused, expiring; never nil.
func (h Hygiene) Flags(k Key, now time.Time) []string {
	out := []string{}
	if h.Stale(k, now) {
		out = append(out, FlagStale)
	}
	if h.Unused(k, now) {
		out = append(out, FlagUnused)
	}
	if h.Expiring(k, now) {
		out = append(out, FlagExpiring)
	}
	return out
}

// matchHygiene reports whether k has every flag the query asks for.
func (lq listQuery) matchHygiene(k Key, now time.Time) bool {
	h := lq.Hygiene
	return (!lq.Stale || h.Stale(k, now)) && (!lq.Unused || h.Unused(k, now)) && (!lq.Expiring || h.Expiring(k, now))
}

// Counts are how many keys are in each hygiene state (authgate_api_keys{state}). Active
// counts every key that is neither revoked nor expired; Expiring, Stale and Unused are
// subsets of it (a key can be in several); Expired counts expired keys that are not
// revoked. Revoked keys are in no state.
type Counts struct {
	Active, Expiring, Stale, Unused, Expired int64
}

// count adds k, at now, to c.
func (c *Counts) count(h Hygiene, k Key, now time.Time) {
	switch k.Status(now) {
	case StatusExpired:
		c.Expired++
		return
	case StatusRevoked:
		return
	}
	c.Active++
	if h.Stale(k, now) {
		c.Stale++
	}
	if h.Unused(k, now) {
		c.Unused++
	}
	if h.Expiring(k, now) {
		c.Expiring++
	}
}

// HygieneCounts counts the keys in each hygiene state at the store's current time. It
// reads every key: O(n) under the read lock, for the key counts of one process.
func (m *MemStore) HygieneCounts(ctx context.Context, h Hygiene) (Counts, error) {
	now := m.now()
	var c Counts
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, r := range m.byID {
		c.count(h, r.key, now)
	}
	return c, nil
}

// Expiring returns the keys that are active and expire within `within` of the store's
// current time, at most limit of them, soonest first.
func (m *MemStore) Expiring(ctx context.Context, within time.Duration, limit int) ([]Key, error) {
	now := m.now()
	h := Hygiene{ExpiringWithin: within}
	var out []Key
	m.mu.RLock()
	for _, r := range m.byID {
		if h.Expiring(r.key, now) {
			out = append(out, r.key.clone())
		}
	}
	m.mu.RUnlock()
	sortByExpiry(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortByExpiry(ks []Key) {
	cands := make([]candidate, len(ks))
	for i, k := range ks {
		cands[i] = candidate{member(k, SortExpiresAt), k}
	}
	sortCandidates(cands, false)
	for i, c := range cands {
		ks[i] = c.key
	}
}

// The hygiene sets of Store. They hold the IDs of keys that are not revoked, so that the
// counts of authgate_api_keys are a handful of ZCOUNTs, never a walk over every key:
//
//	<base>h:live     keys not (yet seen) expired, scored by expiry (Unix ms; +inf never)
//	<base>h:age      the same keys, scored by creation (Unix ms)
//	<base>h:use      the same keys, scored by last use, or creation when never used
//	<base>h:expired  expired keys, scored by expiry
//	<base>h:ready    set once the sets hold every key (see backfill)
//
// Every script that writes a record keeps them in step; HygieneCounts first moves the
// keys of h:live whose expiry has passed to h:expired (only those that expired since its
// last run), then counts ranges.
func (s *Store) hKey(name string) string { return s.base + "h:" + name }

// hygieneArgs are the hygiene arguments of the create and update scripts for k: revoked
// ("1" or "0"), expiry score, creation score, now.
func (s *Store) hygieneArgs(k Key) []any {
	revoked, exp := "0", "+inf"
	if k.RevokedAt != nil {
		revoked = "1"
	}
	if k.ExpiresAt != nil {
		exp = strconv.FormatInt(k.ExpiresAt.UnixMilli(), 10)
	}
	return []any{s.base, revoked, exp, strconv.FormatInt(k.CreatedAt.UnixMilli(), 10),
		strconv.FormatInt(s.now().UnixMilli(), 10)}
}

// sweepBatch bounds the keys one sweep script moves to h:expired, so that Redis is never
// blocked long; HygieneCounts repeats it until the sweep is done.
const sweepBatch = 1000

// HygieneCounts counts the keys in each hygiene state at the store's current time, from
// the hygiene sets: one script that moves newly expired keys out of h:live (bounded per
// call, repeated until done) and then counts (ZCARD, ZCOUNT). The first call on a store
// written by a version without the sets fills them once from the key records.
func (s *Store) HygieneCounts(ctx context.Context, h Hygiene) (Counts, error) {
	if err := s.ensureHygieneSets(ctx); err != nil {
		return Counts{}, fmt.Errorf("apikey: hygiene counts: %w", err)
	}
	now := s.now().UnixMilli()
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	keys := []string{s.hKey("live"), s.hKey("age"), s.hKey("use"), s.hKey("expired")}
	for range 1000 {
		v, err := countScript.Run(ctx, s.rdb, keys, now, sweepBatch, ms(h.ExpiringWithin), ms(h.MaxAge), ms(h.UnusedAfter)).Int64Slice()
		if err != nil {
			return Counts{}, fmt.Errorf("apikey: hygiene counts: %w", err)
		}
		if len(v) != 6 {
			return Counts{}, fmt.Errorf("apikey: hygiene counts: unexpected reply of %d values", len(v))
		}
		if v[0] < sweepBatch {
			return Counts{Active: v[1], Expiring: v[2], Stale: v[3], Unused: v[4], Expired: v[5]}, nil
		}
	}
	return Counts{}, fmt.Errorf("apikey: hygiene counts: expiry sweep did not finish")
}

// Expiring returns the keys that are active and expire within `within` of the store's
// current time, at most limit of them, soonest first: a range of h:live, then one read
// per key.
func (s *Store) Expiring(ctx context.Context, within time.Duration, limit int) ([]Key, error) {
	if err := s.ensureHygieneSets(ctx); err != nil {
		return nil, fmt.Errorf("apikey: expiring: %w", err)
	}
	now := s.now().UnixMilli()
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.hKey("live"), ByScore: true,
		Start: "(" + strconv.FormatInt(now, 10), Stop: strconv.FormatInt(now+within.Milliseconds(), 10),
		Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("apikey: expiring: %w", err)
	}
	out := make([]Key, 0, len(ids))
	for _, id := range ids {
		k, err := s.Get(ctx, id)
		if err != nil {
			continue // revoked and deleted in between, or a stale member
		}
		out = append(out, k)
	}
	return out, nil
}

// ensureHygieneSets fills the hygiene sets from the key records once per store (h:ready
// marks it done). Each key is written by a script that checks its record is still the one
// read, so a change racing the fill is never undone (that change synced the sets itself).
// Replicas filling at once write the same members.
func (s *Store) ensureHygieneSets(ctx context.Context) error {
	n, err := s.rdb.Exists(ctx, s.hKey("ready")).Result()
	if err != nil || n == 1 {
		return err
	}
	var batch []any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		args := append([]any{s.base, strconv.FormatInt(s.now().UnixMilli(), 10)}, batch...)
		batch = batch[:0]
		return backfillScript.Run(ctx, s.rdb, []string{s.idsKey()}, args...).Err()
	}
	var ferr error
	err = s.walkRaw(ctx, s.index(SortCreatedAt), false, "-", "+", func(_, rec string, k Key) bool {
		a := s.hygieneArgs(k)
		batch = append(batch, k.ID, rec, a[1], a[2], a[3])
		if len(batch) >= 5*touchChunk {
			if ferr = flush(); ferr != nil {
				return true
			}
		}
		return false
	})
	if err == nil {
		err = ferr
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("fill hygiene sets: %w", err)
	}
	return s.rdb.Set(ctx, s.hKey("ready"), "1", 0).Err()
}
