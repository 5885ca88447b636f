package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// BenchmarkLocalAllow measures the hot path: a known key, allowed.
func BenchmarkLocalAllow(b *testing.B) {
	lc := NewLocal(LocalOptions{})
	l := Limit{Requests: 1 << 30, Per: time.Second}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key_" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := lc.Allow(ctx, keys[i%len(keys)], l); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLocalAllowParallel is BenchmarkLocalAllow from every core.
func BenchmarkLocalAllowParallel(b *testing.B) {
	lc := NewLocal(LocalOptions{})
	l := Limit{Requests: 1 << 30, Per: time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := lc.Allow(ctx, "key_1", l); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRedisAllow measures one round trip to a local redis-server.
func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.Start(b)
	r := NewRedis(srv.Client(b), "bench:")
	l := Limit{Requests: 1 << 30, Per: time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Allow(ctx, "key_1", l); err != nil {
			b.Fatal(err)
		}
	}
}
