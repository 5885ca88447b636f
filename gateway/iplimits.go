package gateway

import (
	"log/slog"
	"net/http"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// Key prefixes of the per-client-address buckets of routes: rate_limits.per_ip, and the
// rate_limit of a public route. Anyone can make one (one per IPv6 /64 they hold), so they
// live in a local store of their own (localLimiter) and never evict a credential's bucket.
const (
	ipBucketPrefix      = "ip:"
	ipAllBucketPrefix   = "ip:all:"
	ipRouteBucketPrefix = "ip:route:"
)

// limitPerIP counts every request on a route against rate_limits.per_ip of its client
// address (after the trusted-proxy walk, IPv6 per /64), before authentication: a flood of
// bad credentials from one address is refused 429 rate_limited before any is checked.
// Without rate_limits.per_ip it adds no step.
func (p *pipeline) limitPerIP(next http.Handler) http.Handler {
	rl := p.cfg.RateLimits.PerIP
	if rl == nil {
		return next
	}
	l := ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		ck := ratelimit.ClientKey(info.ClientIP)
		if ck == "" {
			next.ServeHTTP(w, r) // no address to count (not over TCP); later limits still apply
			return
		}
		if p.allowIP(w, r, info, ipAllBucketPrefix+ck, l, "per_ip", "per-address rate limit of ") {
			next.ServeHTTP(w, r)
		}
	})
}

// limitPublic counts a request on a public route with a rate_limit against that limit of
// its client address (IPv6 per /64): a public route has no credential to count.
func (p *pipeline) limitPublic(rt *route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		rl := rt.cfg.RateLimit
		if rl == nil {
			return next
		}
		l := ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}
		prefix := ipRouteBucketPrefix + rt.cfg.Name + "|"
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := reqinfo.From(r.Context())
			ck := ratelimit.ClientKey(info.ClientIP)
			if ck == "" {
				next.ServeHTTP(w, r)
				return
			}
			if p.allowIP(w, r, info, prefix+ck, l, rt.cfg.Name, "rate limit of ") {
				next.ServeHTTP(w, r)
			}
		})
	}
}

// allowIP counts the request in bucket under l, writes the limit headers (the policy
// named policy), and reports whether the request may go on; if not, it has answered 429
// rate_limited with Retry-After (or 500 for a limit the limiter refuses, which validation
// keeps out of the config: fail closed).
func (p *pipeline) allowIP(w http.ResponseWriter, r *http.Request, info *reqinfo.Info, bucket string, l ratelimit.Limit, policy, what string) bool {
	res, err := p.s.limiter.Allow(r.Context(), bucket, l)
	if err != nil {
		p.s.logger.ErrorContext(r.Context(), "rate limit failed", slog.String("route", info.Route), slog.String("error", err.Error()))
		info.Reject(w, &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err})
		return false
	}
	setLimitHeaders(w.Header(), l, res, policy)
	if !res.Allowed {
		info.Reject(w, &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Msg: what + l.Text() + " reached; retry later", RetryAfter: res.RetryAfter})
		return false
	}
	return true
}
