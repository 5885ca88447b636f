package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Redis is a [Limiter] that keeps its state in Redis, so that every
// gateway replica shares one exact limit per key. It runs the GCRA of
// github.com/go-redis/redis_rate: one Lua script call per request, atomic
// in Redis and touching a single key, so it works on Redis Cluster. The
// clock is Redis's own (TIME), not the gateway's. Redis is safe for
// concurrent use.
type Redis struct {
	lim    *redis_rate.Limiter
	prefix string
}

// NewRedis returns a Redis limiter that stores the state of key under
// prefix + "rl:" + key (redis_rate adds its own "rate:" in front).
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	return &Redis{lim: redis_rate.NewLimiter(rdb), prefix: prefix + "rl:"}
}

// Allow reports whether one more request for key is allowed under l, and
// takes it from the shared allowance if so. A refused request takes
// nothing. It returns an error wrapping [ErrInvalidLimit] for an invalid
// l, and a wrapped Redis or context error when Redis cannot answer; the
// error never contains key.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if err := l.validate(); err != nil {
		return Result{}, err
	}
	res, err := r.lim.Allow(ctx, r.prefix+key, redis_rate.Limit{Rate: l.Requests, Burst: l.Requests, Period: l.Per})
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis allow: %w", err)
	}
	out := Result{Allowed: res.Allowed > 0, Limit: l.Requests, ResetAfter: roundRedis(res.ResetAfter)}
	if out.Allowed {
		out.Remaining = remaining(l, res.ResetAfter)
	} else {
		out.RetryAfter = roundRedis(res.RetryAfter)
	}
	return out, nil
}

// roundRedis rounds a duration from the redis_rate script to the
// microsecond, the resolution of Redis TIME. The script works in float
// seconds since 2017, around 3e8, where one float64 step is about 30ns, so
// its results are off by up to about 0.1µs either way; rounding makes exact
// values such as 50ms come out as 50ms. A client that waits RetryAfter is
// never refused for the fraction of a microsecond this may cut, because its
// next request reaches Redis at least a round trip later. Negative values
// (-1 is redis_rate's "not applicable") become 0.
func roundRedis(d time.Duration) time.Duration {
	return max(d.Round(time.Microsecond), 0)
}

// remaining returns how many more requests l allows right now, given the
// time until the allowance is full again after an allowed request.
// redis_rate's own Remaining truncates a float in Lua and often comes out
// one too low (3.9999999 becomes 3), so it is recomputed here with a
// microsecond of tolerance: the next request reaches Redis later than that.
func remaining(l Limit, resetAfter time.Duration) int {
	free := float64(l.Per-resetAfter+time.Microsecond) * float64(l.Requests) / float64(l.Per)
	return min(max(int(math.Floor(free)), 0), l.Requests-1)
}
