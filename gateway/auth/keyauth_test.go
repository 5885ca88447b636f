package auth

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/httperr"
)

// countingRecords counts store lookups and can fail them, to show what reaches the store.
type countingRecords struct {
	inner *apikey.MemStore
	calls atomic.Int64
	fail  atomic.Bool
}

func (c *countingRecords) ByHash(ctx context.Context, h [32]byte) (apikey.Key, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return apikey.Key{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
	}
	return c.inner.ByHash(ctx, h)
}

type keyFixture struct {
	auth    *KeyAuthenticator
	records *countingRecords
	store   *apikey.MemStore
	hasher  apikey.Hasher
	now     *time.Time
	down    *atomic.Bool
	// storeErrors counts StoreError calls by op (tests call Authenticate from one goroutine).
	storeErrors map[string]int
}

func newKeyFixture(t *testing.T, failClosed bool) *keyFixture {
	t.Helper()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := &keyFixture{now: &now, hasher: apikey.NewHasher("pepper"), down: &atomic.Bool{}}
	clock := func() time.Time { return *f.now }
	f.store = apikey.NewMemStore(clock)
	f.records = &countingRecords{inner: f.store}
	cache, err := credcache.New[*CachedKey](credcache.Options{MaxEntries: 100, TTL: 30 * time.Second,
		NegativeTTL: 5 * time.Second, StaleTTL: 5 * time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	f.storeErrors = map[string]int{}
	f.auth = NewKeyAuthenticator(KeyAuthenticatorOptions{Prefix: "sk", Hasher: f.hasher, Records: f.records,
		Cache: cache, StorePolicy: StorePolicy{FailClosed: failClosed, StoreDown: f.down.Load, Now: clock,
			StoreError: func(op string) { f.storeErrors[op]++ }}})
	return f
}

// add stores a new key and returns its plaintext.
func (f *keyFixture) add(t *testing.T, mutate func(*apikey.Key)) (string, apikey.Key) {
	t.Helper()
	plain, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	k := apikey.Key{ID: apikey.NewID(), Name: "ci", Type: apikey.Personal, Environment: apikey.Live,
		Scopes: []string{"reports:read"}, AllowedIPs: []string{"10.0.0.0/8", "192.0.2.7"}, CreatedBy: "user_1",
		CreatedAt: *f.now, Start: plain[:apikey.StartLen]}
	if mutate != nil {
		mutate(&k)
	}
	if err := f.store.Create(context.Background(), k, f.hasher.Hash(plain)); err != nil {
		t.Fatal(err)
	}
	return plain, k
}

func (f *keyFixture) authenticate(plain string) (Principal, error) {
	return f.auth.Authenticate(context.Background(), Credential{Kind: APIKey, Value: plain})
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var he *httperr.Error
	if !errors.As(err, &he) {
		t.Fatalf("error = %v, want %d %s", err, status, code)
	}
	if he.Status != status || he.Code != code {
		t.Fatalf("error = %d %s, want %d %s", he.Status, he.Code, status, code)
	}
}

func TestKeyAuthGoodKeyIsCached(t *testing.T) {
	f := newKeyFixture(t, false)
	plain, k := f.add(t, nil)
	for i := range 3 {
		p, err := f.authenticate(plain)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if p.KeyID != k.ID || p.Subject != "user_1" || p.Env != "live" || len(p.Scopes) != 1 || len(p.AllowedIPs) != 2 {
			t.Fatalf("principal = %+v", p)
		}
	}
	if n := f.records.calls.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1 (then cache hits)", n)
	}
}

func TestKeyAuthMalformedNeverReachesStore(t *testing.T) {
	f := newKeyFixture(t, false)
	plain, _ := f.add(t, nil)
	bad := []string{"", "sk_live_short", plain[:len(plain)-1] + "x", "pk" + plain[2:], plain + "0"}
	for _, b := range bad {
		_, err := f.authenticate(b)
		wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	}
	if n := f.records.calls.Load(); n != 0 {
		t.Errorf("store lookups = %d for malformed keys, want 0", n)
	}
}

func TestKeyAuthUnknownKeyIsNegativelyCached(t *testing.T) {
	f := newKeyFixture(t, false)
	unknown, _ := apikey.Generate("sk", apikey.Live)
	for range 3 {
		_, err := f.authenticate(unknown)
		wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	}
	if n := f.records.calls.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1 (then negative hits)", n)
	}
	*f.now = f.now.Add(6 * time.Second) // past the negative TTL: asked again
	_, err := f.authenticate(unknown)
	wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	if n := f.records.calls.Load(); n != 2 {
		t.Errorf("store lookups after negative TTL = %d, want 2", n)
	}
}

func TestKeyAuthRevokedAndExpired(t *testing.T) {
	f := newKeyFixture(t, false)
	revoked, rk := f.add(t, nil)
	if _, err := f.store.Revoke(context.Background(), rk.ID, *f.now); err != nil {
		t.Fatal(err)
	}
	_, err := f.authenticate(revoked)
	wantCode(t, err, http.StatusUnauthorized, "revoked_api_key")

	expiry := f.now.Add(time.Hour)
	expiring, _ := f.add(t, func(k *apikey.Key) { k.ExpiresAt = &expiry; k.ExpiresInDays = 30 })
	if _, err := f.authenticate(expiring); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	*f.now = expiry // cached, but expiry is checked on every request
	_, err = f.authenticate(expiring)
	wantCode(t, err, http.StatusUnauthorized, "expired_api_key")
}

func TestKeyAuthStoreDown(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		name := map[bool]string{false: "serve_cached", true: "fail_closed"}[failClosed]
		t.Run(name, func(t *testing.T) {
			f := newKeyFixture(t, failClosed)
			cached, _ := f.add(t, nil)
			if _, err := f.authenticate(cached); err != nil {
				t.Fatal(err)
			}
			unknown, _ := apikey.Generate("sk", apikey.Live)
			f.records.fail.Store(true)

			// The store fails before the health check notices: the failed read is counted.
			_, err := f.authenticate(unknown)
			wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
			if f.storeErrors["key_lookup"] != 1 {
				t.Errorf("store errors = %v, want one key_lookup", f.storeErrors)
			}
			f.down.Store(true)

			// An unknown key while the store is down: 503, never 401.
			_, err = f.authenticate(unknown)
			wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
			var he *httperr.Error
			if errors.As(err, &he); he.RetryAfter <= 0 {
				t.Errorf("RetryAfter = %v, want > 0", he.RetryAfter)
			}

			// The cached key, still fresh, then stale (past ttl, within stale_ttl).
			for _, step := range []time.Duration{0, 40 * time.Second} {
				*f.now = f.now.Add(step)
				_, err = f.authenticate(cached)
				if failClosed {
					wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
				} else if err != nil {
					t.Fatalf("serve_cached, cached key after %v: %v", step, err)
				}
			}
			// Past stale_ttl nothing is trusted any more.
			*f.now = f.now.Add(5 * time.Minute)
			_, err = f.authenticate(cached)
			wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")

			// The store returns: full service.
			f.records.fail.Store(false)
			f.down.Store(false)
			if _, err := f.authenticate(cached); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

// TestKeyAuthKnownDownSkipsStore: while the health check says the store is down, a miss
// is answered at once (503, or the stale entry with serve_cached) without a store read
// that would only wait out the client's dial retries.
func TestKeyAuthKnownDownSkipsStore(t *testing.T) {
	f := newKeyFixture(t, false)
	cached, _ := f.add(t, nil)
	if _, err := f.authenticate(cached); err != nil {
		t.Fatal(err)
	}
	unknown, _ := apikey.Generate("sk", apikey.Live)
	f.down.Store(true)
	before := f.records.calls.Load()
	_, err := f.authenticate(unknown)
	wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
	*f.now = f.now.Add(40 * time.Second) // past ttl: Stale
	if _, err := f.authenticate(cached); err != nil {
		t.Fatalf("stale cached key while down: %v", err)
	}
	if n := f.records.calls.Load() - before; n != 0 {
		t.Errorf("store reads while known down = %d, want 0", n)
	}
}
