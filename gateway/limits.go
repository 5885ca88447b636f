package gateway

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// limitFor is the limit of a request: the credential's own, else the
// route's, else the default of the credential's method; and the bucket it is counted in,
// with the name the RateLimit-Policy header gives it. Each limit has its own bucket per
// credential: a route's limit does not share a count with the method default.
func limitFor(cfg *config.Config, rt *route, info *reqinfo.Info) (l ratelimit.Limit, bucket, policy string) {
	cred := credentialBucket(info)
	switch {
	case info.OwnLimit.Requests > 0:
		// A bucket per value of the key's own limit: once an admin changes or clears it,
		// the count made under the old one (possibly hours of debt) is not carried over.
		return info.OwnLimit, fmt.Sprintf("%s|own:%d/%s", cred, info.OwnLimit.Requests, info.OwnLimit.Per), "credential"
	case rt.cfg.RateLimit != nil:
		rl := rt.cfg.RateLimit
		return ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}, cred + "|route:" + rt.cfg.Name, rt.cfg.Name
	case info.KeyID != "":
		rl := cfg.RateLimits.APIKey
		return ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}, cred, "api_key"
	}
	rl := cfg.RateLimits.JWT
	return ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}, cred, "jwt"
}

// credentialBucket names the authenticated credential of info in bucket keys: its key id,
// or its token's subject (with the issuer, when not the built-in one).
func credentialBucket(info *reqinfo.Info) string {
	if info.KeyID != "" {
		return "key:" + info.KeyID
	}
	if info.Issuer != "" {
		return "sub:" + info.Issuer + "|" + info.Subject // another issuer's sub is not our user's
	}
	return "sub:" + info.Subject
}

// limit counts the request against its credential's limit and refuses it past the limit
// with 429 rate_limited and Retry-After. Every answer of a limited route carries the
// X-RateLimit-* headers and the IETF draft RateLimit-Policy / RateLimit headers. A refused
// request does not use up the allowance.
func (p *pipeline) limit(rt *route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := reqinfo.From(r.Context())
			l, bucket, policy := limitFor(p.cfg, rt, info)
			res, err := p.s.limiter.Allow(r.Context(), bucket, l)
			if err != nil {
				// Only an invalid limit, which validation keeps out of the config. Refuse:
				// an unlimited credential is not what anyone configured.
				p.s.logger.ErrorContext(r.Context(), "rate limit failed", slog.String("route", rt.cfg.Name), slog.String("error", err.Error()))
				info.Reject(w, &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err})
				return
			}
			setLimitHeaders(w.Header(), l, res, policy)
			if !res.Allowed {
				info.Reject(w, &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
					Msg:        "rate limit of " + l.Text() + " reached; retry later",
					RetryAfter: res.RetryAfter})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// setLimitHeaders writes the limit headers: X-RateLimit-Limit/-Remaining/-Reset (seconds
// until the allowance is full) and the structured fields of the IETF httpapi draft,
// RateLimit-Policy ("name";q=quota;w=window seconds) and RateLimit ("name";r=remaining;t=reset).
func setLimitHeaders(h http.Header, l ratelimit.Limit, res ratelimit.Result, policy string) {
	reset := strconv.FormatInt(ceilSeconds(res.ResetAfter), 10)
	remaining := strconv.Itoa(res.Remaining)
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(l.Requests)}
	h["X-Ratelimit-Remaining"] = []string{remaining}
	h["X-Ratelimit-Reset"] = []string{reset}
	h["Ratelimit-Policy"] = []string{`"` + policy + `";q=` + strconv.Itoa(l.Requests) + ";w=" + strconv.FormatInt(ceilSeconds(l.Per), 10)}
	h["Ratelimit"] = []string{`"` + policy + `";r=` + remaining + ";t=" + reset}
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
