package credcache

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/metrics"
)

// cachedKey stands in for what the API-key authenticator caches.
type cachedKey struct {
	ID, Owner string
	Scopes    []string
	Expires   time.Time
}

func BenchmarkGetHit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		metrics bool
	}{{"metrics", true}, {"nometrics", false}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{MaxEntries: 100_000, TTL: time.Hour, StaleTTL: 2 * time.Hour}
			if bc.metrics {
				opts.Metrics = metrics.New(prometheus.NewRegistry())
			}
			c, err := New[cachedKey](opts)
			if err != nil {
				b.Fatal(err)
			}
			const keys = 10_000
			hashes := make([][32]byte, keys)
			for i := range hashes {
				hashes[i] = hashN(i)
				c.Put(hashes[i], cachedKey{ID: "key_" + string(rune(i)), Owner: "user", Scopes: []string{"reports:read"}}, "key:x", "user:y")
			}
			var seed atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					if _, res := c.Get(hashes[i%keys]); res != Hit {
						b.Errorf("got %s, want hit", res)
						return
					}
					i++
				}
			})
		})
	}
}

func BenchmarkPut(b *testing.B) {
	c, err := New[cachedKey](Options{MaxEntries: 10_000, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	hashes := make([][32]byte, 100_000)
	for i := range hashes {
		hashes[i] = hashN(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Put(hashes[i%len(hashes)], cachedKey{ID: "key_1"}, "key:1", "user:1")
		i++
	}
}
