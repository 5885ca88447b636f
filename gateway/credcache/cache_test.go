package credcache

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/metrics"
)

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string // "" means valid
	}{
		{"valid", Options{MaxEntries: 10, TTL: time.Second, NegativeTTL: time.Second, StaleTTL: time.Minute}, ""},
		{"no stale", Options{MaxEntries: 10, TTL: time.Second}, ""},
		{"zero max", Options{MaxEntries: 0, TTL: time.Second}, "max_entries"},
		{"zero ttl", Options{MaxEntries: 1}, "ttl: must be > 0"},
		{"negative negative ttl", Options{MaxEntries: 1, TTL: time.Second, NegativeTTL: -1}, "negative_ttl"},
		{"stale below ttl", Options{MaxEntries: 1, TTL: time.Minute, StaleTTL: time.Second}, "stale_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New[int](tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestGetByAge(t *testing.T) {
	const (
		ttl      = 30 * time.Second
		negTTL   = 5 * time.Second
		staleTTL = 5 * time.Minute
	)
	tests := []struct {
		name      string
		negative  bool
		staleTTL  time.Duration
		age       time.Duration
		want      Result
		wantValue string
		wantLen   int // entries left after Get
	}{
		{"fresh", false, staleTTL, 0, Hit, "v", 1},
		{"just before ttl", false, staleTTL, ttl - time.Nanosecond, Hit, "v", 1},
		{"at ttl is stale", false, staleTTL, ttl, Stale, "v", 1},
		{"just before stale ttl", false, staleTTL, staleTTL - time.Nanosecond, Stale, "v", 1},
		{"past stale ttl", false, staleTTL, staleTTL, Miss, "", 0},
		{"past ttl without stale", false, 0, ttl, Miss, "", 0},
		{"negative fresh", true, staleTTL, 0, NegativeHit, "", 1},
		{"negative just before ttl", true, staleTTL, negTTL - time.Nanosecond, NegativeHit, "", 1},
		{"negative expired", true, staleTTL, negTTL, Miss, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newCache(t, Options{MaxEntries: 10, TTL: ttl, NegativeTTL: negTTL, StaleTTL: tt.staleTTL, Now: clk.Now})
			h := hashOf("k")
			if tt.negative {
				c.PutNegative(h)
			} else {
				c.Put(h, "v", "key:1")
			}
			clk.Advance(tt.age)
			v, res := c.Get(h)
			if res != tt.want || v != tt.wantValue {
				t.Errorf("got (%q, %s), want (%q, %s)", v, res, tt.wantValue, tt.want)
			}
			if got := c.Len() + c.NegativeLen(); got != tt.wantLen {
				t.Errorf("got Len %d, want %d", got, tt.wantLen)
			}
		})
	}
}

func TestGetUnknownIsMiss(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Second})
	if v, res := c.Get(hashOf("nope")); res != Miss || v != "" {
		t.Fatalf("got (%q, %s), want (\"\", miss)", v, res)
	}
}

func TestPutNegativeWithoutNegativeTTLStoresNothing(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Second})
	c.PutNegative(hashOf("k"))
	if got := c.Len(); got != 0 {
		t.Fatalf("got Len %d, want 0", got)
	}
}

func TestPutReplacesEntryAndRefreshesTime(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute, NegativeTTL: time.Second, Now: clk.Now})
	h := hashOf("k")
	c.PutNegative(h)
	clk.Advance(30 * time.Second)
	c.Put(h, "v1", "key:1")
	clk.Advance(45 * time.Second)
	c.Put(h, "v2", "key:2")
	clk.Advance(45 * time.Second)
	if v, res := c.Get(h); res != Hit || v != "v2" {
		t.Fatalf("got (%q, %s), want (v2, hit)", v, res)
	}
	if got := c.Len(); got != 1 {
		t.Fatalf("got Len %d, want 1", got)
	}
	// The replaced entry's tags are gone from the index.
	if n := c.Invalidate("key:1"); n != 0 {
		t.Fatalf("Invalidate(old tag) removed %d, want 0", n)
	}
	if n := c.Invalidate("key:2"); n != 1 {
		t.Fatalf("Invalidate(new tag) removed %d, want 1", n)
	}
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	const max = 100 // below minShardEntries: one shard, exact LRU
	c := newCache(t, Options{MaxEntries: max, TTL: time.Minute})
	for i := range max {
		c.Put(hashN(i), "v")
	}
	if _, res := c.Get(hashN(0)); res != Hit { // 0 becomes most recent; 1 is now oldest
		t.Fatalf("got %s for entry 0, want hit", res)
	}
	c.Put(hashN(max), "v")
	if got := c.Len(); got != max {
		t.Fatalf("got Len %d, want %d", got, max)
	}
	for _, tc := range []struct {
		n    int
		want Result
	}{{0, Hit}, {1, Miss}, {2, Hit}, {max, Hit}} {
		if _, res := c.Get(hashN(tc.n)); res != tc.want {
			t.Errorf("entry %d: got %s, want %s", tc.n, res, tc.want)
		}
	}
}

func TestLenNeverExceedsMaxEntries(t *testing.T) {
	for _, max := range []int{1, 7, 1000, 10_000, 100_003} {
		c := newCache(t, Options{MaxEntries: max, TTL: time.Minute, NegativeTTL: time.Second})
		var wg sync.WaitGroup
		const writers = 4
		perWriter := max + 5000
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					n := w*perWriter + i
					if n%3 == 0 {
						c.PutNegative(hashN(n))
					} else {
						c.Put(hashN(n), "v", "user:x")
					}
					if i%1000 == 0 {
						if got := c.Len(); got > max {
							t.Errorf("max %d: got Len %d while writing", max, got)
						}
					}
				}
			})
		}
		wg.Wait()
		// Every shard received more than its capacity, so the cache is full.
		if got := c.Len(); got != max {
			t.Errorf("max %d: got Len %d after writes, want %d", max, got, max)
		}
		if n := c.Invalidate("user:x"); n > max {
			t.Errorf("max %d: Invalidate removed %d", max, n)
		}
	}
}

func TestInvalidateByTag(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 1000, TTL: time.Minute, NegativeTTL: time.Minute})
	c.Put(hashN(1), "k1", "key:1", "user:alice")
	c.Put(hashN(2), "k2", "key:2", "user:alice")
	c.Put(hashN(3), "k3", "key:3", "user:bob")
	c.PutNegative(hashN(4))

	tests := []struct {
		tag         string
		wantRemoved int
		wantPresent []int
	}{
		{"key:unknown", 0, []int{1, 2, 3, 4}},
		{"key:1", 1, []int{2, 3, 4}},
		{"user:alice", 1, []int{3, 4}},
		{"user:alice", 0, []int{3, 4}},
		{"user:bob", 1, []int{4}},
	}
	for _, tt := range tests {
		if got := c.Invalidate(tt.tag); got != tt.wantRemoved {
			t.Errorf("Invalidate(%q): got %d removed, want %d", tt.tag, got, tt.wantRemoved)
		}
		if got := c.Len() + c.NegativeLen(); got != len(tt.wantPresent) {
			t.Errorf("after Invalidate(%q): got Len %d, want %d", tt.tag, got, len(tt.wantPresent))
		}
	}
	if _, res := c.Get(hashN(4)); res != NegativeHit {
		t.Errorf("negative entry: got %s, want negative_hit", res)
	}
}

func TestFlush(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10_000, TTL: time.Minute, NegativeTTL: time.Minute})
	for i := range 5000 {
		c.Put(hashN(i), "v", "user:x")
	}
	c.PutNegative(hashOf("neg"))
	c.Flush()
	if got := c.Len(); got != 0 {
		t.Fatalf("got Len %d after Flush, want 0", got)
	}
	if got := c.NegativeLen(); got != 0 {
		t.Fatalf("got NegativeLen %d after Flush, want 0", got)
	}
	if _, res := c.Get(hashN(1)); res != Miss {
		t.Fatalf("got %s after Flush, want miss", res)
	}
	if n := c.Invalidate("user:x"); n != 0 {
		t.Fatalf("tag index survived Flush: %d removed", n)
	}
	c.Put(hashN(1), "v")
	if _, res := c.Get(hashN(1)); res != Hit {
		t.Fatalf("got %s after Put following Flush, want hit", res)
	}
}

func TestPutIfCurrent(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	e := c.Epoch()
	if !c.PutIfCurrent(e, hashN(1), "v", "key:1") {
		t.Fatal("PutIfCurrent with a current epoch refused")
	}
	e = c.Epoch()
	c.Invalidate("key:other") // any invalidation in between
	if c.PutIfCurrent(e, hashN(2), "v", "key:2") {
		t.Fatal("PutIfCurrent after Invalidate stored the entry")
	}
	e = c.Epoch()
	c.Flush()
	if c.PutIfCurrent(e, hashN(3), "v", "key:3") {
		t.Fatal("PutIfCurrent after Flush stored the entry")
	}
	if got := c.Len(); got != 0 {
		t.Fatalf("got Len %d, want 0", got)
	}
}

func TestPutNegativeIfCurrent(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute, NegativeTTL: time.Second})
	e := c.Epoch()
	if !c.PutNegativeIfCurrent(e, hashN(1)) {
		t.Fatal("PutNegativeIfCurrent with a current epoch refused")
	}
	if _, res := c.Get(hashN(1)); res != NegativeHit {
		t.Fatalf("got %v, want negative_hit", res)
	}
	e = c.Epoch()
	c.Flush()
	if c.PutNegativeIfCurrent(e, hashN(2)) {
		t.Fatal("PutNegativeIfCurrent after Flush stored the entry")
	}
	if _, res := c.Get(hashN(2)); res != Miss {
		t.Fatalf("got %v, want miss", res)
	}
	off := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	if off.PutNegativeIfCurrent(off.Epoch(), hashN(3)) {
		t.Fatal("PutNegativeIfCurrent without NegativeTTL stored an entry")
	}
}

func TestCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	clk := newFakeClock()
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute, NegativeTTL: time.Second, StaleTTL: time.Hour, Now: clk.Now, Metrics: m})
	c.Put(hashN(1), "v")
	c.PutNegative(hashN(2))
	c.Get(hashN(1)) // hit
	c.Get(hashN(1)) // hit
	c.Get(hashN(2)) // negative_hit
	c.Get(hashN(3)) // miss
	clk.Advance(2 * time.Minute)
	c.Get(hashN(1)) // stale: counted as a miss

	for _, tc := range []struct {
		result string
		want   float64
	}{{"hit", 2}, {"negative_hit", 1}, {"miss", 2}} {
		if got := testutil.ToFloat64(m.CredentialCache.WithLabelValues(tc.result)); got != tc.want {
			t.Errorf("authgate_credential_cache_total{result=%q}: got %v, want %v", tc.result, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.CredentialCache, "authgate_credential_cache_total"); n != 3 {
		t.Errorf("got %d label sets, want 3", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 2000, TTL: time.Minute, NegativeTTL: time.Second, StaleTTL: time.Hour})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				n := (g*7919 + i) % 3000
				switch i % 10 {
				case 0:
					c.PutNegative(hashN(n))
				case 1, 2:
					c.Put(hashN(n), "v", "key:"+string(rune('a'+n%5)))
				case 3:
					if i%500 == 3 {
						c.Invalidate("key:" + string(rune('a'+n%5)))
					}
				case 4:
					if i%2000 == 4 {
						c.Flush()
					}
				default:
					c.Get(hashN(n))
				}
			}
		})
	}
	wg.Wait()
	if got := c.Len(); got > 2000 {
		t.Fatalf("got Len %d, want <= 2000", got)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Miss: "miss", Hit: "hit", NegativeHit: "negative_hit", Stale: "stale", 9: "Result(9)"} {
		if got := r.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestReverifyKeepsFallback: after Reverify no positive entry is a Hit, each is Stale
// (a fallback for serve_cached) until verified again; negative entries are gone; a value
// read from the store before the Reverify cannot be stored as verified.
func TestReverifyKeepsFallback(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute, StaleTTL: time.Hour, NegativeTTL: time.Minute})
	c.Put(hashN(1), "one", "key:1")
	c.PutNegative(hashN(2))
	epoch := c.Epoch() // a lookup of hashN(3) starts reading the store

	c.Reverify()
	if v, res := c.Get(hashN(1)); res != Stale || v != "one" {
		t.Fatalf("after Reverify: got (%q, %s), want (one, stale)", v, res)
	}
	if _, res := c.Get(hashN(2)); res != Miss {
		t.Fatalf("negative entry after Reverify: got %s, want miss", res)
	}
	if c.PutIfCurrent(epoch, hashN(3), "three") {
		t.Fatal("a value read before Reverify was stored")
	}
	c.Put(hashN(1), "one again", "key:1") // verified again
	if v, res := c.Get(hashN(1)); res != Hit || v != "one again" {
		t.Fatalf("verified again: got (%q, %s), want (one again, hit)", v, res)
	}
	if n := c.Invalidate("key:1"); n != 1 {
		t.Fatalf("Invalidate after Reverify removed %d entries, want 1", n)
	}
}
