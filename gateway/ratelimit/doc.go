// Package ratelimit limits how often one caller may make requests.
//
// A [Limit] of N requests per P allows a burst of N and refills at N/P (the
// generic cell rate algorithm, or a token bucket of the same shape). Refused
// requests do not use up the allowance. Three [Limiter]s are provided:
//
//   - [Local] keeps the state in this process with golang.org/x/time/rate;
//   - [Redis] keeps it in Redis with github.com/go-redis/redis_rate, one exact
//     limit across every gateway replica;
//   - [Fallback] uses Redis and falls back to Local while Redis is unreachable.
//
// Keys are opaque: they may hold any bytes (user ids, key ids) and never
// appear in errors or logs. Choosing the key and the limit for a request,
// writing the response headers and registering metrics are left to the
// caller.
package ratelimit
