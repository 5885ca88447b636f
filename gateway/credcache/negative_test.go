package credcache

import (
	"testing"
	"time"
)

// TestReview14_NegativeFloodKeepsPositiveEntries: negative entries (what made-up keys
// leave) have a bound of their own: filling it many times over evicts only negative
// entries, and every good credential stays a Hit.
func TestReview14_NegativeFloodKeepsPositiveEntries(t *testing.T) {
	const maxPos, maxNeg = 300, 64
	c := newCache(t, Options{MaxEntries: maxPos, NegativeMaxEntries: maxNeg, TTL: time.Hour, NegativeTTL: time.Minute})
	for i := range maxPos {
		c.Put(hashN(i), "good", "key:good")
	}
	for i := range 20 * maxPos {
		c.PutNegative(hashN(1_000_000 + i))
	}
	for i := range maxPos {
		if _, res := c.Get(hashN(i)); res != Hit {
			t.Fatalf("good entry %d after a flood of %d negative entries: got %s, want hit", i, 20*maxPos, res)
		}
	}
	if got := c.Len(); got != maxPos {
		t.Errorf("got Len %d, want %d", got, maxPos)
	}
	if got := c.NegativeLen(); got != maxNeg {
		t.Errorf("got NegativeLen %d, want %d (its own bound)", got, maxNeg)
	}
	// The most recent negative entries are still refused from the cache.
	if _, res := c.Get(hashN(1_000_000 + 20*maxPos - 1)); res != NegativeHit {
		t.Errorf("latest negative entry: got %s, want negative_hit", res)
	}
}

// TestNegativeAndPositiveReplaceEachOther: a credential is on one side only; the latest
// answer of the store wins.
func TestNegativeAndPositiveReplaceEachOther(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Hour, NegativeTTL: time.Minute})
	h := hashOf("k")
	c.PutNegative(h)
	c.Put(h, "v")
	if v, res := c.Get(h); res != Hit || v != "v" {
		t.Fatalf("after Put over a negative entry: got %s %q, want hit", res, v)
	}
	if c.NegativeLen() != 0 || c.Len() != 1 {
		t.Fatalf("got %d negative and %d positive entries, want 0 and 1", c.NegativeLen(), c.Len())
	}
	c.PutNegative(h)
	if _, res := c.Get(h); res != NegativeHit {
		t.Fatalf("after PutNegative over a positive entry: got %s, want negative_hit", res)
	}
	if c.NegativeLen() != 1 || c.Len() != 0 {
		t.Fatalf("got %d negative and %d positive entries, want 1 and 0", c.NegativeLen(), c.Len())
	}
}

func TestNegativeMaxEntriesDefault(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Hour, NegativeTTL: time.Minute})
	for i := range 5 * DefaultNegativeMaxEntries { // enough to fill every shard
		c.PutNegative(hashN(i))
	}
	if got := c.NegativeLen(); got != DefaultNegativeMaxEntries {
		t.Fatalf("got NegativeLen %d, want the default %d", got, DefaultNegativeMaxEntries)
	}
	if _, err := New[string](Options{MaxEntries: 1, TTL: time.Second, NegativeMaxEntries: -1}); err == nil {
		t.Fatal("a negative negative_max_entries was accepted")
	}
}
