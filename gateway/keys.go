package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/gateway/webhook"
)

// negativeTTL is how long an unknown key is refused from the cache. Short: a negative
// entry cannot be invalidated, and keys are never looked up before they exist.
const negativeTTL = 5 * time.Second

// keyRecords is every use the gateway makes of the key records.
type keyRecords interface {
	Create(ctx context.Context, k apikey.Key, hash [32]byte) error
	CreateLimited(ctx context.Context, k apikey.Key, hash [32]byte, maxActive int) error
	Get(ctx context.Context, id string) (apikey.Key, error)
	ByHash(ctx context.Context, hash [32]byte) (apikey.Key, error)
	Update(ctx context.Context, k apikey.Key) error
	Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error)
	MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (apikey.Key, error)
	List(ctx context.Context, q apikey.Query) (apikey.Page, error)
	TouchLastUsed(ctx context.Context, used map[string]time.Time) error
	HygieneCounts(ctx context.Context, h apikey.Hygiene) (apikey.Counts, error)
	Expiring(ctx context.Context, within time.Duration, limit int) ([]apikey.Key, error)
}

// userRecords is every use the gateway makes of the users.
type userRecords interface {
	Create(ctx context.Context, u user.User) error
	Get(ctx context.Context, id string) (user.User, error)
	ByEmail(ctx context.Context, email string) (user.User, error)
	Update(ctx context.Context, u user.User) error
	Modify(ctx context.Context, id string, fn func(*user.User) error) (user.User, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]user.User, error)
	Count(ctx context.Context) (int, error)
	CreateTeam(ctx context.Context, t user.Team) (user.Team, error)
	GetTeam(ctx context.Context, id string) (user.Team, error)
	ListTeams(ctx context.Context) ([]user.Team, error)
	RenameTeam(ctx context.Context, id, name string) (user.Team, error)
	DeleteTeam(ctx context.Context, id string) ([]string, error)
	AddMember(ctx context.Context, teamID, userID string) (user.User, error)
	RemoveMember(ctx context.Context, teamID, userID string) (user.User, error)
}

// keys is the API-key machinery of one process, built once: reloads do not rebuild it.
type keys struct {
	records   keyRecords
	users     userRecords
	hasher    apikey.Hasher
	cache     *credcache.Cache[*auth.CachedKey]
	inv       *credcache.Invalidator
	authn     *auth.KeyAuthenticator
	recorder  *activity.Recorder
	audit     *audit.Log
	api       *admin.API
	notifier  *webhook.Notifier
	keyPrefix string // api_keys.prefix
	bootstrap string // plaintext of bootstrap.admin_key; "" for none
}

func (s *Server) newKeys(cfg *config.Config, st store.Store) (*keys, error) {
	k := &keys{hasher: apikey.NewHasher(cfg.APIKeys.HashPepper.Value()), keyPrefix: cfg.APIKeys.Prefix}
	var sink activity.Sink
	var rdb redis.UniversalClient
	prefix := cfg.Store.Redis.KeyPrefix
	if r, ok := st.(*store.Redis); ok {
		rdb = r.Client()
		// Security-relevant writes wait for replicas (durable.go).
		k.records = durableKeys{keyRecords: apikey.NewStore(rdb, prefix, time.Now), wait: r.WaitReplicas,
			flush: func(ctx context.Context, id string) { _ = k.inv.Publish(ctx, auth.KeyTag(id)) }}
		k.users = durableUsers{userRecords: user.NewStore(rdb, prefix, time.Now), wait: r.WaitReplicas,
			flush: func(ctx context.Context, id string) { _ = s.userChanged(ctx, id, admin.UserChange{Access: true}) }}
		sink = activity.NewRedisSink(rdb, prefix)
	} else {
		k.records = apikey.NewMemStore(time.Now)
		k.users = user.NewMemStore(time.Now)
		sink = activity.NewMemorySink()
	}
	var err error
	k.cache, err = credcache.New[*auth.CachedKey](s.cacheOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("gateway: credential cache: %w", err)
	}
	if err := s.metrics.CacheEntries("keys", k.cache.Len, k.cache.NegativeLen); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	_, local := st.(*store.Memory)
	if k.inv, err = credcache.NewInvalidator(k.cache, st, credcache.InvalidatorOptions{Logger: s.logger, Metrics: s.metrics, Local: local,
		Subscribed: s.subscribed}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.metrics.CacheTrusted("keys", k.inv.Trusted); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.metrics.InvalidationPeers("keys", k.inv.Peers); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	k.authn = auth.NewKeyAuthenticator(auth.KeyAuthenticatorOptions{Prefix: cfg.APIKeys.Prefix, Hasher: k.hasher,
		Records: k.records, Cache: k.cache, StorePolicy: s.storePolicy(cfg),
		Owners: k.users, Roles: func() map[string][]string { return s.Config().Policy.Roles }})
	k.audit = audit.New(s.logger, rdb, prefix, s.metrics.APIKeyEvents, time.Now).WithRetry(4096,
		func(n int) { s.metrics.ActivityDropped.WithLabelValues("audit").Add(float64(n)) })
	wo := s.opts.Webhooks
	wo.Endpoints = func() []webhook.Endpoint { return endpointsOf(s.Config()) }
	wo.Deliveries, wo.Logger = s.metrics.WebhookDeliveries, s.logger
	k.notifier = webhook.New(wo)
	k.recorder = activity.New(sink, activity.Options{Touch: k.records.TouchLastUsed, Logger: s.logger,
		OnDrop: func(n int) { s.metrics.ActivityDropped.WithLabelValues("activity").Add(float64(n)) },
		NewIP: func(ctx context.Context, e activity.Event) {
			_ = k.audit.Record(ctx, audit.Event{Type: audit.KeyNewIP, KeyID: e.KeyID, Actor: "key:" + e.KeyID,
				ClientIP: e.ClientIP, Time: e.Time, Detail: e.Method + " " + e.Path})
			k.notifyNewIP(ctx, e)
		}})
	k.api = admin.New(admin.Options{Prefix: cfg.AuthAPI.Prefix, RefreshTokenPath: cfg.AuthAPI.RefreshTokenPath,
		KeyPrefix: cfg.APIKeys.Prefix, AllowedExpiryDays: cfg.APIKeys.AllowedExpiryDays,
		DefaultExpiryDays: cfg.APIKeys.DefaultExpiryDays, Hasher: k.hasher, Activity: sink,
		Keys:            ownerLimited{keyRecords: k.records, max: func() int { return s.Config().APIKeys.MaxKeysPerOwner }},
		MaxScopesPerKey: func() int { return s.Config().APIKeys.MaxScopesPerKey },
		Audit:           k.audit, Invalidate: k.inv.Publish, KeyTag: auth.KeyTag, Now: time.Now, Logger: s.logger,
		Users: k.users, Teams: k.users, Roles: func() map[string][]string { return s.Config().Policy.Roles },
		PasswordParams: s.passwordParams(), OnUserChange: s.userChanged,
		Passwords: s.passwords, Reauthenticate: s.reauthenticate,
		Hygiene:       func() apikey.Hygiene { return hygieneOf(s.Config()) },
		MaxExpiryDays: func() int { return s.Config().APIKeys.MaxExpiryDays },
		Notify:        k.notifier.Emit})
	if bk := cfg.Bootstrap.AdminKey.Value(); bk != "" {
		if err := checkBootstrapKey(bk, cfg.APIKeys.Prefix); err != nil { // (Preflight's check)
			return nil, fmt.Errorf("gateway: bootstrap.admin_key: %w", err)
		}
		k.bootstrap = bk
	}
	return k, nil
}

// notifyNewIP emits key.used_from_new_ip. It runs in the activity recorder, off the
// request path; the key's record is read only when a receiver wants the event.
func (k *keys) notifyNewIP(ctx context.Context, e activity.Event) {
	if !k.notifier.Wants(webhook.KeyUsedFromNewIP) {
		return
	}
	d := webhook.Data{Key: &webhook.Key{ID: e.KeyID}, ClientIP: e.ClientIP}
	if rec, err := k.records.Get(ctx, e.KeyID); err == nil {
		d.Key = webhook.KeyOf(rec)
	}
	k.notifier.Emit(ctx, webhook.NewEvent(webhook.KeyUsedFromNewIP, e.Time, d))
}

// ownerLimited is the key records as the management API sees them: every key it makes
// (create, rotate) counts against api_keys.max_keys_per_owner, in the same atomic store
// operation as the insert.
type ownerLimited struct {
	keyRecords
	max func() int
}

// Create stores k unless its creator already holds max() active keys.
func (o ownerLimited) Create(ctx context.Context, k apikey.Key, hash [32]byte) error {
	return o.CreateLimited(ctx, k, hash, o.max())
}

// cacheOptions are the options of the credential caches (keys, tokens) from store.cache:
// stale entries are kept for on_store_error: serve_cached only.
func (s *Server) cacheOptions(cfg *config.Config) credcache.Options {
	c := cfg.Store.Cache
	stale := c.StaleTTL
	if cfg.Store.OnStoreError == "fail_closed" || stale < c.TTL {
		stale = 0
	}
	return credcache.Options{MaxEntries: c.MaxEntries, NegativeMaxEntries: c.NegativeMaxEntries, TTL: c.TTL,
		NegativeTTL: negativeTTL, StaleTTL: stale, Metrics: s.metrics}
}

// storePolicy is the authenticators' behaviour towards the store (on_store_error).
func (s *Server) storePolicy(cfg *config.Config) auth.StorePolicy {
	return auth.StorePolicy{FailClosed: cfg.Store.OnStoreError == "fail_closed", StoreDown: s.breaker.Open,
		StoreError: func(op string) { s.metrics.StoreErrors.WithLabelValues(op).Inc() }}
}

// registerBootstrap stores bootstrap.admin_key (hashed) as the admin key "bootstrap" when
// no key has its hash yet, retrying while the store is unreachable.
func (k *keys) registerBootstrap(ctx context.Context, logger *slog.Logger) {
	if k.bootstrap == "" {
		return
	}
	for !k.ensureBootstrap(ctx, logger) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// ensureBootstrap stores the bootstrap key when no key has its hash, and reports whether
// it is there now. A revoked bootstrap key stays revoked: its record is there.
func (k *keys) ensureBootstrap(ctx context.Context, logger *slog.Logger) bool {
	h := k.hasher.Hash(k.bootstrap)
	_, err := k.records.ByHash(ctx, h)
	if err == nil {
		return true // already there (another replica, or an earlier start)
	}
	if errors.Is(err, apikey.ErrNotFound) {
		p, _ := apikey.Parse(k.bootstrap, k.keyPrefix) // checked well-formed in newKeys
		rec := apikey.Key{ID: apikey.NewID(), Name: "bootstrap", Description: "bootstrap.admin_key from the configuration",
			Type: apikey.Admin, Environment: p.Env, Scopes: []string{"*"}, CreatedBy: "bootstrap", MintedBy: apikey.MintedByBootstrap, Team: apikey.AllTeams,
			CreatedAt: time.Now(), Start: k.bootstrap[:apikey.StartLen]}
		if err = k.records.Create(ctx, rec, h); err == nil || errors.Is(err, apikey.ErrConflict) {
			// A request that tried the key before it was stored left a negative entry,
			// which no invalidation can reach: without this the new install's admin key
			// is refused for negativeTTL after start. Reverify drops the negative entries
			// and keeps the positive ones as a fallback.
			k.cache.Reverify()
			logger.Info("bootstrap admin key registered", slog.String("key_id", rec.ID))
			return true
		}
	}
	if ctx.Err() == nil {
		logger.Error("bootstrap admin key not registered yet; retrying", slog.String("error", err.Error()))
	}
	return false
}

// authenticator dispatches a credential to the authenticator of its kind.
type authenticator struct {
	keys   *auth.KeyAuthenticator
	tokens *auth.TokenAuthenticator // nil: no issuer configured, every JWT is refused
}

func (a authenticator) Authenticate(ctx context.Context, c auth.Credential) (auth.Principal, error) {
	switch {
	case c.Kind == auth.APIKey:
		return a.keys.Authenticate(ctx, c)
	case a.tokens != nil:
		return a.tokens.Authenticate(ctx, c)
	}
	return auth.Refuser{}.Authenticate(ctx, c)
}

// newBreaker is the store's breaker: it logs the outage and its end and sets
// authgate_store_up. While it is open, Redis commands on request paths fail at once (key
// lookups answer per on_store_error, rate limits fall back to local), so a dead or
// partitioned Redis costs a request nothing (issue 10, found fault 4).
func (s *Server) newBreaker() *store.Breaker {
	return store.NewBreaker(func(open bool, err error) {
		fb, _ := s.limiter.(*ratelimit.Fallback) // rate_limits.mode: redis
		switch {
		case open:
			s.logger.Error("store unreachable", slog.String("error", err.Error()))
			s.metrics.StoreUp.Set(0)
			if fb != nil {
				fb.StoreDown(err)
			}
		default:
			if !s.breaker.Since().IsZero() {
				s.logger.Info("store reachable again")
				// It may have come back without its data (a restart without persistence).
				nudge(s.bootstrapNow)
			}
			s.metrics.StoreUp.Set(1)
			if fb != nil {
				fb.StoreUp()
			}
		}
	})
}

// watchStore pings the store every interval, and at once when a subscription comes back
// (see subscribed), until ctx is done: an outage is known within one interval and a
// ping's bound even without traffic, and a successful ping ends one.
func (s *Server) watchStore(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.pingStore(ctx, interval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.probeNow:
		}
	}
}

// pingStore probes the store within bound and opens or closes the breaker by the answer.
func (s *Server) pingStore(ctx context.Context, bound time.Duration) bool {
	pctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	err := s.store.Ping(pctx)
	if err != nil && ctx.Err() == nil {
		s.metrics.StoreErrors.WithLabelValues("ping").Inc()
		s.breaker.Trip(err)
		return false
	}
	s.breaker.Reset()
	return true
}

// subscribed is called on every confirmed (re)subscription of an invalidation channel.
// The store may be back: it is probed at once, rather than at the next health interval,
// and the probe, not the subscription, marks it up. A subscription is a connection of its
// own, so it can succeed while the commands' connection pool still fails (the Redis
// client keeps returning its last dial error for up to a second after many failed dials)
// or is too slow for the command timeouts; marking the store up then would send every
// flushed credential to a store that does not answer them (issue 10, fault suite). The
// store may also have restarted without its data, so the bootstrap credentials are
// checked now rather than at the next periodic check.
func (s *Server) subscribed() {
	nudge(s.probeNow)
	if !s.breaker.Open() {
		nudge(s.bootstrapNow) // else when the probe closes the breaker (newBreaker)
	}
}

// nudge asks for a check through ch (buffered, one pending), without waiting.
func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // one is already due
	}
}

// servingFromCache reports whether, with the store down, on_store_error: serve_cached
// still lets cached keys through: for stale_ttl after the outage began, keys verified
// before it keep working. /readyz stays 200 ("degraded") for that time (docs/operations.md,
// Health), so a Redis outage shared by every replica does not take them all out of the
// load balancer.
func (s *Server) servingFromCache() bool {
	st := s.Config().Store
	return st.OnStoreError == "serve_cached" &&
		time.Since(s.breaker.Since()) < st.Cache.StaleTTL
}

// ownHandler serves the gateway's own paths: the web console (page and session calls)
// and the built-in issuer's calls (login, refresh, logout, TOTP, JWKS), which check their
// callers themselves, and the management API, for authenticated callers.
func (p *pipeline) ownHandler() http.Handler {
	// Per client IP before authentication (401 floods count), per credential after.
	api := p.limitManagementIP(p.authenticate(p.limitManagementCredential(p.s.keys.api)))
	lg := p.s.tokens.login
	if lg == nil {
		return api
	}
	con := p.s.tokens.console
	// TOTP enrolment and verification check their bearer token themselves: they count
	// against the management API's per-IP limit (before that check) only.
	mfa, mfaPrefix := p.limitManagementIP(lg), p.cfg.AuthAPI.Prefix+"/mfa/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if con != nil && p.cfg.Console.Enabled && con.Serves(r) {
			con.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, mfaPrefix) && lg.Serves(r) {
			mfa.ServeHTTP(w, r)
			return
		}
		if lg.Serves(r) {
			lg.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
