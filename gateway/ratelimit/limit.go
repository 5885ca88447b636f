package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidLimit is returned (wrapped) by [Local.Allow] and [Redis.Allow]
// for a [Limit] whose Requests or Per is not positive. Config validation is
// expected to prevent it.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

// Limit is a rate limit: Requests requests per Per, e.g. 100 per minute.
// Requests is also the burst: a caller that has been idle for Per may make
// Requests requests at once. Both fields must be positive; the zero Limit is
// invalid.
type Limit struct {
	// Requests is the number of requests allowed per Per.
	Requests int
	// Per is the period Requests applies to.
	Per time.Duration
}

// String returns the limit in the form "100/1m0s".
func (l Limit) String() string {
	return fmt.Sprintf("%d/%s", l.Requests, l.Per)
}

// Text returns the limit for people: "100 requests per 1m", "1 request per 1h30m".
func (l Limit) Text() string {
	noun := "requests"
	if l.Requests == 1 {
		noun = "request"
	}
	per := l.Per.String() // 1m0s, 1h0m0s, 1h30m0s, 30s
	if strings.HasSuffix(per, "m0s") {
		per = strings.TrimSuffix(per, "0s")
	}
	if strings.HasSuffix(per, "h0m") {
		per = strings.TrimSuffix(per, "0m")
	}
	return fmt.Sprintf("%d %s per %s", l.Requests, noun, per)
}

// validate returns an error wrapping ErrInvalidLimit unless both fields
// are positive.
func (l Limit) validate() error {
	if l.Requests <= 0 || l.Per <= 0 {
		return fmt.Errorf("%w: %d per %s: requests and per must be > 0", ErrInvalidLimit, l.Requests, l.Per)
	}
	return nil
}

// Result is the answer to one [Limiter.Allow] call.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is Limit.Requests of the limit that was applied.
	Limit int
	// Remaining is the number of requests still allowed right now, >= 0.
	Remaining int
	// ResetAfter is the time until the allowance is full again.
	ResetAfter time.Duration
	// RetryAfter is, for a refused request, the time until one request
	// would be allowed; it is 0 when Allowed is true.
	RetryAfter time.Duration
}

// Limiter decides whether the caller identified by key may make one more
// request under the limit l. Implementations are safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// ceilDuration converts a number of nanoseconds to a Duration, rounding up
// so that waiting the returned time is always long enough.
func ceilDuration(ns float64) time.Duration {
	if ns <= 0 {
		return 0
	}
	if ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(ns))
}
