package gateway

import (
	"log/slog"
	"net/http"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// Key prefixes of the management API's buckets: per client address (anyone can make one)
// and per authenticated credential. Each has its own local store (localLimiter).
const (
	mgmtBucketPrefix   = "mgmt:"
	mgmtIPBucketPrefix = "mgmt:ip:"
)

// limitManagementIP counts every call to the management API against
// rate_limits.management_ip of its client address (IPv6 per /64), before authentication:
// a flood of bad credentials is refused 429 rate_limited before any is checked.
func (p *pipeline) limitManagementIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		ck := ratelimit.ClientKey(info.ClientIP)
		if ck == "" {
			next.ServeHTTP(w, r) // no address to count (not over TCP); the credential limit still applies
			return
		}
		if p.allowManagement(w, r, info, mgmtIPBucketPrefix+ck, p.s.Config().RateLimits.ManagementIP) {
			next.ServeHTTP(w, r)
		}
	})
}

// limitManagementCredential counts every authenticated call to the management API against
// rate_limits.management of its credential (key id or token subject): a stolen key cannot
// list, make or refresh keys faster than that, nor flood the audit stream.
func (p *pipeline) limitManagementCredential(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		if p.allowManagement(w, r, info, mgmtBucketPrefix+credentialBucket(info), p.s.Config().RateLimits.Management) {
			next.ServeHTTP(w, r)
		}
	})
}

// allowManagement counts the call in bucket under rl and reports whether it may go on; if
// not, it has answered 429 rate_limited with Retry-After (or 500 for a limit the limiter
// refuses, which validation keeps out of the config: fail closed).
func (p *pipeline) allowManagement(w http.ResponseWriter, r *http.Request, info *reqinfo.Info, bucket string, rl config.RateLimit) bool {
	l := ratelimit.Limit{Requests: rl.Requests, Per: rl.Per}
	res, err := p.s.limiter.Allow(r.Context(), bucket, l)
	if err != nil {
		p.s.logger.ErrorContext(r.Context(), "management rate limit failed", slog.String("error", err.Error()))
		info.Reject(w, &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err})
		return false
	}
	if !res.Allowed {
		info.Reject(w, &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Msg:        "management API rate limit of " + l.Text() + " reached; retry later",
			RetryAfter: res.RetryAfter})
		return false
	}
	return true
}
