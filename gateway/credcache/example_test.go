package credcache_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/store"
)

// The read path of an authenticator: a Hit needs no store round trip,
// Stale is a Miss with a fallback for on_store_error: serve_cached, and the
// epoch keeps a value read before a revocation out of the cache.
func Example() {
	st := store.NewMemory(nil)
	cache, _ := credcache.New[string](credcache.Options{
		MaxEntries: 100_000, TTL: 30 * time.Second, NegativeTTL: 5 * time.Second, StaleTTL: 5 * time.Minute,
	})
	inv, _ := credcache.NewInvalidator(cache, st, credcache.InvalidatorOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inv.Run(ctx) // in the gateway: one errgroup member
	<-inv.Ready()

	h := sha256.Sum256([]byte("sk_live_example"))
	lookup := func() string {
		v, res := cache.Get(h)
		switch res {
		case credcache.Hit:
			return "cached " + v
		case credcache.NegativeHit:
			return "refused"
		}
		epoch := cache.Epoch()
		// ... read the key from the store; here it is found ...
		cache.PutIfCurrent(epoch, h, "key_1", "key:key_1", "user:u_1")
		return "from store"
	}
	fmt.Println(lookup())
	fmt.Println(lookup())
	_ = inv.Publish(ctx, "user:u_1") // e.g. the owner was disabled
	fmt.Println(lookup())
	// Output:
	// from store
	// cached key_1
	// from store
}
