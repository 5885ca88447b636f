package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestRedisExactCounts checks Remaining and the first ResetAfter over many
// limits whose refill interval is not a round number of seconds, where
// redis_rate's own float truncation would report one request too few.
func TestRedisExactCounts(t *testing.T) {
	srv := redistest.Start(t)
	r := NewRedis(srv.Client(t), "exact:")
	for i := range 400 {
		l := Limit{Requests: 1 + i%37, Per: time.Duration(1+i%13) * 700 * time.Millisecond}
		key := fmt.Sprint(i)
		for j := range min(l.Requests, 3) {
			got := mustAllow(t, r, key, l)
			if !got.Allowed || got.Remaining != l.Requests-1-j {
				t.Fatalf("limit %v, request %d: got %+v, want allowed, remaining %d", l, j+1, got, l.Requests-1-j)
			}
			if want := (l.Per / time.Duration(l.Requests)).Round(time.Microsecond); j == 0 && got.ResetAfter != want {
				t.Fatalf("limit %v, request 1: ResetAfter = %v, want %v", l, got.ResetAfter, want)
			}
		}
	}
}

// TestRedisKeyLayout checks where the state lives: one key per limited
// key, named prefix + "rl:" + key under redis_rate's "rate:", with a TTL.
func TestRedisKeyLayout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	key := "user\x00:42\xff"
	mustAllow(t, NewRedis(rdb, "ag:"), key, Limit{Requests: 10, Per: time.Minute})

	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	if want := "rate:ag:rl:" + key; len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys = %q, want [%q]", keys, want)
	}
	ttl, err := rdb.TTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatalf("TTL: %v", err)
	}
	if ttl <= 0 || ttl > 6*time.Second { // ceil(ResetAfter) = ceil(6s)
		t.Errorf("TTL = %v, want in (0, 6s]", ttl)
	}
}

// TestRedisErrors checks that failures are errors that keep their cause
// and never show the key.
func TestRedisErrors(t *testing.T) {
	srv := redistest.Start(t)
	r := NewRedis(newClient(t, srv, true), "e:")
	l := Limit{Requests: 1, Per: time.Minute}
	const key = "secret-subject-7"

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Allow(ctx, key, l); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v, want context.Canceled", err)
	}

	srv.Stop(t)
	got, err := r.Allow(context.Background(), key, l)
	if err == nil || got != (Result{}) {
		t.Fatalf("redis down: got %+v, %v; want zero Result and an error", got, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "ratelimit: redis allow: ") || strings.Contains(msg, key) {
		t.Errorf("redis down: error %q: want prefix %q and no key", msg, "ratelimit: redis allow: ")
	}
}

// TestRedisSharedAcrossLimiters: three limiters with their own clients,
// like three gateway replicas, hammer one key; together they allow the
// limit, not three times it.
func TestRedisSharedAcrossLimiters(t *testing.T) {
	srv := redistest.Start(t)
	const limit, replicas, workers, each = 200, 3, 6, 50 // 900 requests for 200
	l := Limit{Requests: limit, Per: time.Minute}        // one refill per 300ms
	var (
		allowed atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range replicas {
		r := NewRedis(newClient(t, srv, false), "shared:")
		for range workers {
			wg.Go(func() {
				for range each {
					res, err := r.Allow(context.Background(), "key_1", l)
					if err != nil {
						t.Errorf("Allow: %v", err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := int(allowed.Load())
	t.Logf("allowed %d of %d requests from %d replicas in %v (limit %d per minute)", got, replicas*workers*each, replicas, elapsed, limit)
	// Refill during the run is the only legitimate excess.
	refilled := int(elapsed / (l.Per / limit))
	if got < limit || got > limit+refilled || got > limit*102/100 {
		t.Errorf("allowed %d, want %d (+%d refilled during %v, and within 2%%)", got, limit, refilled, elapsed)
	}
}
