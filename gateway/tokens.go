package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/console"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/policy"
)

// TokenChannel is the pub/sub channel of the verified-token cache's invalidations (logout,
// user changes). Keys have their own (credcache.DefaultChannel). Tools that change users
// outside a gateway (authgate users --config) publish on both.
const TokenChannel = "invalidate-tokens"

// tokens is the JWT machinery of one process: the verifier of configured issuers and the
// built-in one, the verified-token cache, and the built-in issuer's calls. Built once:
// changes to jwt or issuer need a restart (Reload warns).
type tokens struct {
	verifier    *jwtauth.Verifier
	cache       *credcache.Cache[*auth.CachedToken]
	inv         *credcache.Invalidator
	authn       *auth.TokenAuthenticator
	revocations *issuer.Revocations
	wait        func(ctx context.Context, keys ...string) error // store.Redis.WaitReplicas; durable.go
	refresh     issuer.RefreshStore                             // nil without the issuer
	login       *login.Handler                                  // nil without the issuer
	console     *console.Console                                // nil without console.enabled
	stop        context.CancelFunc
}

// newLimiter is the limiter of rate_limits.mode: Redis (falling back to local limits
// while Redis is unreachable) or local. Local buckets are kept in one store per purpose
// (see localLimiter).
func (s *Server) newLimiter(cfg *config.Config, st store.Store) ratelimit.Limiter {
	local := localLimiter(cfg.RateLimits.MaxBuckets)
	r, ok := st.(*store.Redis)
	if !ok || cfg.RateLimits.Mode != "redis" {
		return local
	}
	return ratelimit.NewFallback(ratelimit.NewRedis(r.Client(), cfg.Store.Redis.KeyPrefix), local, ratelimit.FallbackOptions{
		Logger: s.logger,
		// The replicas this one hears on the invalidation channel share every limit.
		Replicas: func() int {
			if s.keys == nil || s.keys.inv == nil {
				return 1
			}
			return s.keys.inv.Peers() + 1
		},
		OnFallback: func(active bool) {
			if active {
				s.metrics.RateLimitFallback.Set(1)
			} else {
				s.metrics.RateLimitFallback.Set(0)
			}
		},
	})
}

// Key prefixes of the login limiter's buckets (package login): per client address and
// per email. Other "login:" keys share the per-address store.
const (
	loginBucketPrefix      = "login:"
	loginEmailBucketPrefix = "login:email:"
)

// localLimiter is the in-process limiter: buckets for login per email, for the rest of
// login (per client address), for the management API per client address and per
// credential, for routes per client address (rate_limits.per_ip and public routes'
// rate_limit), and for credentials each live in a store of their own,
// each bounded by maxBuckets (rate_limits.max_buckets). Anyone can create login buckets,
// one per IPv6 /64 or email they try; kept apart, they can never evict a credential's
// bucket and so reset its limit (issue 9, item 14); nor can per-address route buckets. Credential buckets are only made by
// credentials that authenticated.
func localLimiter(maxBuckets int) *ratelimit.Partitioned {
	newStore := func() ratelimit.Limiter { return ratelimit.NewLocal(ratelimit.LocalOptions{MaxEntries: maxBuckets}) }
	return ratelimit.NewPartitioned(newStore(),
		ratelimit.Partition{Prefix: loginEmailBucketPrefix, Limiter: newStore()},
		ratelimit.Partition{Prefix: loginBucketPrefix, Limiter: newStore()},
		ratelimit.Partition{Prefix: mgmtIPBucketPrefix, Limiter: newStore()},
		ratelimit.Partition{Prefix: mgmtBucketPrefix, Limiter: newStore()},
		ratelimit.Partition{Prefix: ipBucketPrefix, Limiter: newStore()})
}

func (s *Server) newTokens(cfg *config.Config, st store.Store) (*tokens, error) {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tokens{stop: cancel, revocations: issuer.NewRevocations(st), wait: waitReplicas(st)}
	ok := false
	defer func() {
		if !ok {
			cancel()
		}
	}()
	var issuers []jwtauth.IssuerConfig
	for _, ic := range cfg.JWT.Issuers {
		jc, err := jwtIssuer(ic) // (Preflight's)
		if err != nil {
			return nil, fmt.Errorf("gateway: jwt issuer %s: %w", ic.Issuer, err)
		}
		issuers = append(issuers, jc)
	}
	var (
		minter *issuer.Minter
		ks     *issuer.KeySet
	)
	if cfg.Issuer.Enabled {
		var (
			created bool
			err     error
		)
		ks, created, err = issuer.LoadOrCreateKeySet(cfg.Issuer.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: issuer.signing_key_file: %w", err)
		}
		if created {
			s.logger.Info("issuer signing key created", slog.String("file", cfg.Issuer.SigningKeyFile), slog.String("kid", ks.SigningKID()))
		}
		if ks.Insecure() {
			s.logger.Warn("issuer.signing_key_file is readable by group or others; chmod 600 it", slog.String("file", cfg.Issuer.SigningKeyFile))
		}
		minter = &issuer.Minter{Keys: ks, Issuer: cfg.Issuer.Name, TTL: cfg.Issuer.AccessTTL, Now: time.Now}
		issuers = append(issuers, jwtauth.IssuerConfig{Issuer: cfg.Issuer.Name, Audiences: []string{cfg.Issuer.Name},
			Algorithms: ks.Algorithms(), Keys: ks.Public(), RoleClaim: "role"})
		if r, isRedis := st.(*store.Redis); isRedis {
			t.refresh = durableRefresh{RefreshStore: issuer.NewRedisRefreshStore(r.Client(), cfg.Store.Redis.KeyPrefix, time.Now).
				WithReuseGrace(cfg.Issuer.RefreshReuseGrace), wait: r.WaitReplicas}
		} else {
			t.refresh = issuer.NewMemRefreshStore(time.Now).WithReuseGrace(cfg.Issuer.RefreshReuseGrace)
		}
	}
	var err error
	if len(issuers) > 0 {
		t.verifier, err = jwtauth.New(ctx, issuers, jwtauth.Options{Leeway: cfg.JWT.Leeway, Logger: s.logger,
			OnJWKSRefresh: func(iss, result string) { s.metrics.JWKSRefresh.WithLabelValues(iss, result).Inc() }})
		if err != nil {
			return nil, fmt.Errorf("gateway: jwt: %w", err)
		}
	}
	t.cache, err = credcache.New[*auth.CachedToken](s.cacheOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("gateway: token cache: %w", err)
	}
	if err := s.metrics.CacheEntries("tokens", t.cache.Len, t.cache.NegativeLen); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	_, local := st.(*store.Memory)
	if t.inv, err = credcache.NewInvalidator(t.cache, st, credcache.InvalidatorOptions{Channel: TokenChannel, Logger: s.logger, Local: local,
		Metrics: s.metrics, Subscribed: s.subscribed}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.metrics.CacheTrusted("tokens", t.inv.Trusted); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := s.metrics.InvalidationPeers("tokens", t.inv.Peers); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if t.verifier != nil {
		builtin := ""
		if cfg.Issuer.Enabled {
			builtin = cfg.Issuer.Name
		}
		t.authn = auth.NewTokenAuthenticator(auth.TokenAuthenticatorOptions{Verifier: t.verifier, Cache: t.cache,
			Builtin: builtin, Owners: s.keys.users, Revoked: t.revocations.TokenRevoked,
			Roles:  func() map[string][]string { return s.Config().Policy.Roles },
			Leeway: cfg.JWT.Leeway, StorePolicy: s.storePolicy(cfg)})
	}
	if cfg.Issuer.Enabled {
		// After the authenticator: the issuer's calls check tokens with it.
		t.login, err = login.New(login.Options{Prefix: cfg.AuthAPI.Prefix, Issuer: cfg.Issuer.Name, Users: s.keys.users,
			Minter: minter, Keys: ks, Refresh: t.refresh, RefreshTTL: cfg.Issuer.RefreshTTL,
			TOTP: issuer.NewTOTPChecker(st, time.Now), MFA: func() string { return s.Config().Issuer.MFA },
			IsAdmin: func(role string) bool { return policy.Grants(s.Config().Policy.Roles[role], "admin") },
			Tokens:  t.authn, RevokeAccess: t.revoke, RevokeSession: t.revokeSession, Passwords: s.passwords,
			Limiter: s.limiter, LoginLimit: func() ratelimit.Limit {
				l := s.Config().RateLimits.Login
				return ratelimit.Limit{Requests: l.Requests, Per: l.Per}
			},
			GlobalLimit: func() ratelimit.Limit {
				l := s.Config().RateLimits.LoginGlobal
				return ratelimit.Limit{Requests: l.Requests, Per: l.Per}
			},
			Leeway: cfg.JWT.Leeway, PasswordParams: s.passwordParams(),
			OnLogin: func(result string) { s.metrics.Logins.WithLabelValues(result).Inc() },
			Logger:  s.logger})
		if err != nil {
			return nil, fmt.Errorf("gateway: login: %w", err)
		}
		if cfg.Console.Enabled {
			t.console, err = console.New(console.Options{Path: cfg.Console.Path, Login: t.login,
				AuthPrefix: cfg.AuthAPI.Prefix, RefreshTTL: cfg.Issuer.RefreshTTL, Logger: s.logger,
				ExpiryDays: cfg.APIKeys.AllowedExpiryDays, DefaultExpiryDays: cfg.APIKeys.DefaultExpiryDays})
			if err != nil {
				return nil, fmt.Errorf("gateway: %w", err)
			}
		}
	}
	ok = true
	return t, nil
}

// revoke revokes an access token until it expires, on every replica: the revocation is
// stored (a replica that has not seen the token reads it there), then the token's cache
// entries are dropped everywhere.
func (t *tokens) revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := t.revocations.Revoke(ctx, jti, exp); err != nil {
		return fmt.Errorf("gateway: revoke token: %w", err)
	}
	// Published even when replicas do not confirm: every replica drops its cached copy.
	werr := t.wait(ctx, issuer.RevokedTokenKey(jti))
	if err := t.inv.Publish(ctx, auth.TokenTag(jti)); err != nil {
		return fmt.Errorf("gateway: revoke token: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("gateway: revoke token: %w", werr)
	}
	return nil
}

// revokeSession refuses every access token of the refresh family sid until exp, on every
// replica: the revocation is stored, then the family's cache entries are dropped everywhere.
func (t *tokens) revokeSession(ctx context.Context, sid string, exp time.Time) error {
	if err := t.revocations.RevokeSession(ctx, sid, exp); err != nil {
		return fmt.Errorf("gateway: revoke session: %w", err)
	}
	werr := t.wait(ctx, issuer.RevokedSessionKey(sid))
	if err := t.inv.Publish(ctx, auth.SessionTag(sid)); err != nil {
		return fmt.Errorf("gateway: revoke session: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("gateway: revoke session: %w", werr)
	}
	return nil
}

// close stops the verifier's background work.
func (t *tokens) close() {
	if t.verifier != nil {
		t.verifier.Close()
	}
	t.stop()
}
