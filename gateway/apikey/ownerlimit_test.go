package apikey

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
)

// limitedStore is a store that can refuse a create past the owner's limit.
type limitedStore interface {
	store
	CreateLimited(ctx context.Context, k Key, hash [32]byte, maxActive int) error
}

// TestReview13_CreateLimitedCountsActiveKeysPerOwner: CreateLimited refuses a key when its
// creator holds maxActive keys that are neither revoked nor expired, stores nothing then,
// and counts again after a revoke, an expiry or a refresh of an expired key.
func TestReview13_CreateLimitedCountsActiveKeysPerOwner(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store, clk *clocktest.Clock) {
		s := st.(limitedStore)
		ctx := t.Context()
		now := clk.Now()
		mk := func(by string, expires *time.Time) (Key, [32]byte) {
			k, _, h := newKey(t, "k")
			k.CreatedBy, k.CreatedAt, k.ExpiresAt = by, now, expires
			return k, h
		}
		var alice []Key
		for range 3 {
			k, h := mk("alice", nil)
			if err := s.CreateLimited(ctx, k, h, 3); err != nil {
				t.Fatalf("create within the limit: %v", err)
			}
			alice = append(alice, k)
		}
		k, h := mk("alice", nil)
		err := s.CreateLimited(ctx, k, h, 3)
		var le *OwnerLimitError
		if !errors.Is(err, ErrOwnerLimit) || !errors.As(err, &le) || le.Max != 3 {
			t.Fatalf("fourth key: got %v, want an OwnerLimitError of 3", err)
		}
		if _, err := s.Get(ctx, k.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused key was stored: %v", err)
		}
		// Another owner has a limit of their own.
		if b, bh := mk("bob", nil); s.CreateLimited(ctx, b, bh, 3) != nil {
			t.Fatal("bob refused by alice's keys")
		}
		// A revoked key no longer counts.
		if _, err := s.Revoke(ctx, alice[0].ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateLimited(ctx, k, h, 3); err != nil {
			t.Fatalf("after a revoke: %v", err)
		}
		// An expired key no longer counts; refreshed, it counts again.
		soon := now.Add(time.Hour)
		alice[1].ExpiresAt = &soon
		if err := s.Update(ctx, alice[1]); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)
		k5, h5 := mk("alice", nil)
		if err := s.CreateLimited(ctx, k5, h5, 3); err != nil {
			t.Fatalf("after an expiry: %v", err)
		}
		later := clk.Now().Add(24 * time.Hour)
		alice[1].ExpiresAt = &later
		if err := s.Update(ctx, alice[1]); err != nil {
			t.Fatal(err)
		}
		k6, h6 := mk("alice", nil)
		if err := s.CreateLimited(ctx, k6, h6, 3); !errors.Is(err, ErrOwnerLimit) {
			t.Fatalf("after refreshing the expired key: got %v, want ErrOwnerLimit", err)
		}
		// No limit: always stored.
		if err := s.CreateLimited(ctx, k6, h6, 0); err != nil {
			t.Fatalf("without a limit: %v", err)
		}
	})
}

// TestReview13_CreateLimitedIsAtomic: concurrent creates for one owner never pass the
// limit together.
func TestReview13_CreateLimitedIsAtomic(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store, _ *clocktest.Clock) {
		s := st.(limitedStore)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Go(func() {
				k, _, h := newKey(t, "racer")
				k.ExpiresAt = nil
				if err := s.CreateLimited(context.Background(), k, h, 5); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, ErrOwnerLimit) {
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 5 {
			t.Fatalf("got %d keys stored, want exactly 5", ok)
		}
	})
}
