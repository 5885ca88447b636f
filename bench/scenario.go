package main

import (
	"fmt"
	"net/http"
	"time"
)

// scenario is one row of the table: which proxy serves it, what request it gets and which
// status that request must get back. Adding a row is adding a literal to scenarios.
type scenario struct {
	// name labels the row and selects it with -scenarios.
	name string
	// about is printed under the table.
	about string
	// gateway is the authgate configuration that follows the common part written by
	// gatewayConfig (listeners, log, upstream "bench"): store, limits, keys, routes.
	// Scenarios with the same text share one authgate process. "" means the bare
	// httputil.ReverseProxy instead of authgate.
	gateway string
	// env is extra environment for the authgate process, e.g. secrets that gateway
	// references as ${NAME}.
	env []string
	// path is requested on the proxy, with header.
	path   string
	header http.Header
	// jwtAlg, when set (algHS256, algEdDSA), adds Authorization: Bearer with a token of
	// that algorithm's bench issuer, minted at start from the run's keys (newJWTKeys).
	// Every request sends the same token, so after the first the row measures the
	// verified-token cache, not a signature check.
	jwtAlg string
	// distinctTokens, with jwtAlg, replaces that one token with a pool of distinct ones
	// (-jwt-tokens of them, see tokenPool), one a request in turn, so every request misses
	// the verified-token cache: the row measures a signature and claims check each time.
	distinctTokens bool
	// ref names a row this one is judged against besides the baseline, e.g. the JWT rows
	// against authgate-apikey (the target: within 5 %, docs/benchmarks.md).
	ref string
	// want is the status every response must have; others are counted and reported.
	want int
	// rejection marks a row that measures refusing a request, not serving it: it never
	// reaches the upstream, so its ratios to the bare proxy are not like for like.
	rejection bool
	// redis marks a row whose gateway needs a Redis: the benchmark starts one redis-server
	// for the run, gives its address to authgate as ${BENCH_REDIS_ADDR} and measures its
	// CPU alongside the proxy's. Without redis-server installed the row is skipped.
	redis bool
}

// baseline is the scenario every other row is compared with.
const baseline = "bare"

// scenarios are measured in this order in every round, so each round alternates between
// the bare proxy and authgate under the same conditions.
//
// To add a row, append a literal: its gateway text (a const like publicAndProtected, with
// the keys, issuers and limits it needs), the path, the credential header (or jwtAlg), and
// want: 200.
var scenarios = []scenario{
	{
		name:  baseline,
		about: "httputil.ReverseProxy, DefaultTransport with 256 idle connections, no other tuning",
		path:  "/bench",
		want:  http.StatusOK,
	},
	{
		name:    "authgate-public",
		about:   "authgate, public route (no credential needed), memory store, access log off",
		gateway: publicAndProtected,
		path:    "/bench",
		want:    http.StatusOK,
	},
	{
		name:    "authgate-apikey",
		about:   "authgate, API key (cached) + route scopes + local limits (never reached), memory store",
		gateway: publicAndProtected,
		path:    "/private",
		header:  http.Header{"X-Api-Key": {benchKey}},
		want:    http.StatusOK,
	},
	{
		name:    "authgate-jwt-hs256",
		about:   "authgate, JWT HS256 bearer (verified-token cache hit) + route scopes + local limits, memory store",
		gateway: publicAndProtected,
		path:    "/private",
		jwtAlg:  algHS256,
		want:    http.StatusOK,
		ref:     "authgate-apikey",
	},
	{
		name:    "authgate-jwt-eddsa",
		about:   "authgate, JWT EdDSA bearer (verified-token cache hit) + route scopes + local limits, memory store",
		gateway: publicAndProtected,
		path:    "/private",
		jwtAlg:  algEdDSA,
		want:    http.StatusOK,
		ref:     "authgate-apikey",
	},
	{
		name:           "authgate-jwt-hs256-uncached",
		about:          "authgate-jwt-hs256, but a different token every request: a verified-token cache miss, HMAC and claims checked each time",
		gateway:        publicAndProtected,
		path:           "/private",
		jwtAlg:         algHS256,
		distinctTokens: true,
		want:           http.StatusOK,
		ref:            "authgate-jwt-hs256",
	},
	{
		name:           "authgate-jwt-eddsa-uncached",
		about:          "authgate-jwt-eddsa, but a different token every request: a verified-token cache miss, Ed25519 signature and claims checked each time",
		gateway:        publicAndProtected,
		path:           "/private",
		jwtAlg:         algEdDSA,
		distinctTokens: true,
		want:           http.StatusOK,
		ref:            "authgate-jwt-eddsa",
	},
	{
		name:    "authgate-apikey-redis",
		about:   "authgate, API key (cached) + route scopes + mode: redis limits (one Redis round trip per request), Redis store",
		gateway: apiKeyRedis,
		path:    "/private",
		header:  http.Header{"X-Api-Key": {benchKey}},
		want:    http.StatusOK,
		ref:     "authgate-apikey",
		redis:   true,
	},
	{
		name:      "authgate-reject-401",
		about:     "REJECTION COST: authgate, protected route, no credential: 401 before the upstream",
		gateway:   publicAndProtected,
		path:      "/private",
		want:      http.StatusUnauthorized,
		rejection: true,
	},
}

// benchKey is a well-formed key (authgate keys generate) registered as the bootstrap admin
// key of the benchmark's gateway only.
const benchKey = "sk_live_t6sD8z2BHSAvcnHmYJlMAYmgE2gwAf2KFDvW"

// benchLimit is the rate limit of every credential in the benchmark's gateways: a burst of
// a billion requests, refilled at a million per second, so the limiter does all its work on
// every request but never refuses one during a run (a 429 would make the row measure
// refusals). Not "per: 1s": redis_rate's GCRA keeps time as float seconds since 2017, whose
// resolution (~60 ns) is coarser than 1 s / 1e9, so each request's 1 ns would be lost, the
// script would never write its key, and the redis row would measure a read-only limiter.
// At one request per µs each request moves the stored time on, as a real limit does.
const benchLimit = "{requests: 1000000000, per: 1000s}"

// publicAndProtected serves GET /bench to anyone and GET /private only with a credential
// holding benchScope: the bootstrap admin key, or a bearer JWT of either bench issuer.
// The API-key and JWT rows share this one process, so their figures compare like for
// like. The issuers' keys come from the environment (jwtKeys.env). Credentials are limited
// in process (mode: local) with benchLimit.
const publicAndProtected = `
store: {type: memory}
bootstrap: {admin_key: "` + benchKey + `"}
rate_limits:
  mode: local
  api_key: ` + benchLimit + `
  jwt: ` + benchLimit + `
jwt:
  issuers:
    - issuer: "` + issuerHS256 + `"
      audiences: ["` + benchAudience + `"]
      hmac_secret: "${` + envHMACSecret + `}"
      algorithms: ["` + algHS256 + `"]
    - issuer: "` + issuerEdDSA + `"
      audiences: ["` + benchAudience + `"]
      public_key_files: ["${` + envEdDSAKeyFile + `}"]
      algorithms: ["` + algEdDSA + `"]
routes:
  - {name: bench, match: ["GET /bench"], upstream: bench, public: true}
  - {name: private, match: ["GET /private"], upstream: bench, scopes: ["` + benchScope + `"]}
`

// envRedisAddr is the environment variable that gives a redis row's authgate the address
// of the run's redis-server.
const envRedisAddr = "BENCH_REDIS_ADDR"

// apiKeyRedis is publicAndProtected's GET /private for the bootstrap admin key, with the
// keys in Redis and the limits counted there (mode: redis, GCRA, one script call per
// request) with benchLimit.
const apiKeyRedis = `
store:
  type: redis
  redis: {addrs: ["${` + envRedisAddr + `}"]}
bootstrap: {admin_key: "` + benchKey + `"}
rate_limits:
  mode: redis
  api_key: ` + benchLimit + `
  jwt: ` + benchLimit + `
routes:
  - {name: private, match: ["GET /private"], upstream: bench, scopes: ["` + benchScope + `"]}
`

// gatewayConfig is a whole authgate configuration: the part every scenario shares, then
// the scenario's own. Keys must not repeat between the two (YAML forbids duplicates).
func gatewayConfig(listen, opsListen, upstreamURL, own string) string {
	return fmt.Sprintf(`# Generated by bench/ for one run; see bench/scenario.go.
listen: %q
ops_listen: %q
server: {shutdown_timeout: 2s}
log: {level: info, access_log: false}
upstreams:
  bench: {url: %q, timeout: 10s}
%s`, listen, opsListen, upstreamURL, own)
}

// withCredential returns sc with its bearer token, when it has a jwtAlg, minted from k at
// now for ttl and added to a copy of its header.
// A distinctTokens row keeps its header: its tokens come from a tokenPool.
func (sc scenario) withCredential(k *jwtKeys, now time.Time, ttl time.Duration) (scenario, error) {
	if sc.jwtAlg == "" || sc.distinctTokens {
		return sc, nil
	}
	tok, err := k.mint(sc.jwtAlg, now, ttl)
	if err != nil {
		return sc, fmt.Errorf("%s: %w", sc.name, err)
	}
	sc.header = sc.header.Clone()
	if sc.header == nil {
		sc.header = http.Header{}
	}
	sc.header.Set("Authorization", "Bearer "+tok)
	return sc, nil
}
