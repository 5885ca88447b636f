package jwtauth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// errKeyMiss tells Verify that the JWKS has no key for the token yet, so a rate-limited
// refresh may help. It never leaves the package.
var errKeyMiss = errors.New("jwtauth: key not in jwks")

// jwksKey is one usable JWK, checked once when the set is loaded.
type jwksKey struct {
	key any    // public key in the form jwt/v5 verifies with
	alg string // the JWK's alg, "" when absent
	enc bool   // use is "enc": never verifies a signature
}

// jwksSnapshot is an immutable view of one successfully fetched JWK Set.
type jwksSnapshot struct {
	byKID map[string]jwksKey
	byAlg map[string]any // alg -> candidates, for tokens without kid
}

// jwksStore is the jwkset.Storage behind an issuer's HTTP storage. jwkset calls
// KeyReplaceAll exactly once per successful fetch; the store then indexes the keys for
// lock-free lookups on the hot path and reports the success.
type jwksStore struct {
	*jwkset.MemoryJWKSet
	algs      []string
	snap      atomic.Pointer[jwksSnapshot]
	onSuccess func()
}

// KeyReplaceAll stores a freshly fetched set. Keys that fail to index are skipped, never
// the whole set.
func (s *jwksStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	snap := &jwksSnapshot{byKID: make(map[string]jwksKey, len(given)), byAlg: map[string]any{}}
	perAlg := map[string][]any{}
	for _, j := range given {
		m := j.Marshal()
		key := j.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public() // a JWKS should not carry private keys; use only the public half
		}
		nk, err := normalize(key)
		if err != nil {
			continue // unsupported or weak key (e.g. oct): never usable
		}
		k := jwksKey{key: nk, alg: string(m.ALG), enc: m.USE == jwkset.UseEnc}
		if _, dup := snap.byKID[m.KID]; !dup && m.KID != "" {
			snap.byKID[m.KID] = k
		}
		if k.enc {
			continue
		}
		for _, alg := range s.algs {
			if (k.alg == "" || k.alg == alg) && fits(alg, nk) {
				perAlg[alg] = append(perAlg[alg], nk)
			}
		}
	}
	for alg, keys := range perAlg {
		snap.byAlg[alg] = candidates(keys)
	}
	if err := s.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	s.snap.Store(snap)
	s.onSuccess()
	return nil
}

// jwksSource fetches and serves one issuer's JWKS.
type jwksSource struct {
	issuer string
	store  *jwksStore
	client jwkset.Storage // jwkset HTTP client: KeyRead refreshes on an unknown kid
	lim    *rate.Limiter  // the unknown-kid limiter, also handed to jwkset
	// timeout bounds one refresh caused by an unknown kid.
	timeout time.Duration

	mu       sync.Mutex
	inflight chan struct{} // closed when the running unknown-kid refresh ends
}

// newJWKSSource makes the first fetch (a failure is logged and reported, not returned)
// and starts periodic refreshes that end with ctx.
func newJWKSSource(ctx context.Context, c IssuerConfig, o Options) (*jwksSource, error) {
	report := func(result string) { o.OnJWKSRefresh(c.Issuer, result) }
	store := &jwksStore{
		MemoryJWKSet: jwkset.NewMemoryStorage(),
		algs:         c.Algorithms,
		onSuccess:    func() { report(RefreshSuccess) },
	}
	timeout := o.HTTPClient.Timeout
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	storage, err := jwkset.NewStorageFromHTTP(c.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    o.HTTPClient,
		Ctx:                       ctx,
		HTTPExpectedStatus:        http.StatusOK,
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: true, // an unreachable JWKS at start is not fatal
		RefreshErrorHandler: func(ctx context.Context, err error) {
			// jwkset keeps the last good keys when a fetch fails.
			o.Logger.WarnContext(ctx, "jwks fetch failed", "issuer", c.Issuer, "error", err)
			report(RefreshFailure)
		},
		RefreshInterval: o.JWKSRefreshInterval,
		Storage:         store,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	lim := rate.NewLimiter(rate.Every(o.UnknownKIDRefresh), 1)
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{c.JWKSURL: storage},
		// jwkset waits on the limiter and then fetches under one deadline, so the wait
		// bound must leave room for the fetch. refresh below calls it only when a token
		// is available, so the wait itself is always zero.
		RateLimitWaitMax:  timeout,
		RefreshUnknownKID: lim,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return &jwksSource{issuer: c.Issuer, store: store, client: client, lim: lim, timeout: timeout}, nil
}

// keyFunc finds the key for t in the last good JWK Set without locking or allocating.
// It returns errKeyMiss when a refresh might find the key.
func (j *jwksSource) keyFunc(t *jwt.Token) (any, error) {
	snap := j.store.snap.Load()
	if snap == nil {
		return nil, errKeyMiss
	}
	alg := t.Method.Alg()
	kid, hasKID, err := headerKID(t)
	if err != nil {
		return nil, err
	}
	if !hasKID {
		if c, ok := snap.byAlg[alg]; ok {
			return c, nil
		}
		return nil, errKeyMiss
	}
	k, ok := snap.byKID[kid]
	switch {
	case !ok:
		return nil, errKeyMiss
	case k.enc:
		return nil, keyErrorf(ErrUnknownKey, "key %.64q is an encryption key", kid)
	case k.alg != "" && k.alg != alg:
		return nil, keyErrorf(ErrAlgorithm, "key %.64q is for %.16q, token uses %s", kid, k.alg, alg)
	case !fits(alg, k.key):
		return nil, keyErrorf(ErrAlgorithm, "key %.64q does not fit %s", kid, alg)
	}
	return k.key, nil
}

// loaded reports whether a JWK Set was ever fetched.
func (j *jwksSource) loaded() bool { return j.store.snap.Load() != nil }

// refresh fetches the JWK Set again because a token named an unknown key. At most one
// fetch runs at a time and the limiter allows one per Options.UnknownKIDRefresh; callers
// arriving during a fetch wait for it instead of starting another. It never waits for the
// limiter: when no fetch is allowed it returns false at once, so a flood of tokens with
// made-up kids costs neither the JWKS endpoint nor the callers anything.
func (j *jwksSource) refresh(ctx context.Context, kid string) bool {
	j.mu.Lock()
	done := j.inflight
	if done == nil {
		if j.lim.Tokens() < 1 {
			j.mu.Unlock()
			return false
		}
		done = make(chan struct{})
		j.inflight = done
		// The fetch outlives a caller that gives up: others may be waiting for it.
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.timeout)
		go func() {
			defer cancel()
			// jwkset consumes the limiter's token and fetches, as the key is not stored.
			_, _ = j.client.KeyRead(fetchCtx, kid)
			j.mu.Lock()
			j.inflight = nil
			j.mu.Unlock()
			close(done)
		}()
	}
	j.mu.Unlock()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
