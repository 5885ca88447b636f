package config

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// fieldErr is one validation problem before it is located in the file.
type fieldErr struct {
	path string
	msg  string
}

type problems []fieldErr

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, fieldErr{path: path, msg: fmt.Sprintf(format, args...)})
}

// applyDefaults fills what depends on other fields or on whether a field was in the file.
// valued holds the paths the file gives a non-null value: a default replaces only a field
// that is absent (or null), never an explicit zero, which validate then refuses with its
// line ("timeout: 0s" is a mistake to report, not a request for the default).
func (c *Config) applyDefaults(present, valued map[string]bool) {
	for name, u := range c.Upstreams {
		if !valued["upstreams."+name+".timeout"] {
			u.Timeout = 30 * time.Second
		}
		if u.Balance == "" {
			u.Balance = "round_robin"
		}
		if !valued["upstreams."+name+".health.max_failures"] {
			u.Health.MaxFailures = 1
		}
		if !valued["upstreams."+name+".health.eject_for"] {
			u.Health.EjectFor = 10 * time.Second
		}
		c.Upstreams[name] = u
	}
	for i := range c.Routes {
		if rl := c.Routes[i].RateLimit; rl != nil && !valued[fmt.Sprintf("routes[%d].rate_limit.per", i)] {
			rl.Per = time.Minute
		}
	}
	for name, rl := range map[string]*RateLimit{"jwt": &c.RateLimits.JWT, "api_key": &c.RateLimits.APIKey,
		"login": &c.RateLimits.Login, "login_global": &c.RateLimits.LoginGlobal,
		"management": &c.RateLimits.Management, "management_ip": &c.RateLimits.ManagementIP} {
		if !valued["rate_limits."+name+".per"] {
			rl.Per = time.Minute
		}
	}
	if rl := c.RateLimits.PerIP; rl != nil && !valued["rate_limits.per_ip.per"] {
		rl.Per = time.Minute
	}
	if c.RateLimits.Mode == "" {
		c.RateLimits.Mode = "local"
		if c.Store.Type == "redis" {
			c.RateLimits.Mode = "redis"
		}
	}
	if !present["policy.roles"] {
		c.Policy.Roles = map[string][]string{
			"admin":  {"*"},
			"member": {"reports:*", "dashboards:*", "goals:read", "usage:read", "keys:manage"},
			"viewer": {"reports:read", "dashboards:read", "goals:read", "usage:read", "keys:manage"},
		}
	}
	if !present["log.access_log"] {
		c.Log.AccessLog = true
	}
}

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	scopeRE     = regexp.MustCompile(`^[A-Za-z0-9_.:*/-]{1,128}$`)
	keyPrefixRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	// headerNameRE is an HTTP field name (RFC 9110 token).
	headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
)

// Validate reports every problem of c by its YAML path. It has no side effects.
func (c *Config) validate() problems {
	var ps problems
	checkAddr(&ps, "listen", c.Listen)
	checkAddr(&ps, "ops_listen", c.OpsListen)
	if c.Listen == c.OpsListen && !strings.HasSuffix(c.Listen, ":0") {
		ps.add("ops_listen", "must differ from listen (%q): metrics are never served on the main listener", c.Listen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		ps.add("tls", "cert_file and key_file go together: set both or neither")
	}
	checkTracing(&ps, c.Tracing)
	checkPositive(&ps, "server.read_header_timeout", c.Server.ReadHeaderTimeout)
	checkPositive(&ps, "server.idle_timeout", c.Server.IdleTimeout)
	checkPositive(&ps, "server.shutdown_timeout", c.Server.ShutdownTimeout)
	if c.Server.MaxHeaderBytes < 4096 {
		ps.add("server.max_header_bytes", "must be at least 4096, got %d", c.Server.MaxHeaderBytes)
	}
	if c.Server.ReadTimeout < 0 || c.Server.DrainDelay < 0 {
		ps.add("server", "read_timeout and drain_delay must not be negative")
	}
	checkNonNegative(&ps, "server.body_timeout", c.Server.BodyTimeout)
	checkNonNegative(&ps, "server.write_timeout", c.Server.WriteTimeout)
	checkOneOf(&ps, "proxy.method_override", c.Proxy.MethodOverride, "strip", "reject")
	for i, h := range c.Proxy.StripRequestHeaders {
		if !headerNameRE.MatchString(h) {
			ps.add(fmt.Sprintf("proxy.strip_request_headers[%d]", i), "not a header name: %q", h)
		}
	}
	checkBodyLimit(&ps, "proxy.max_body_bytes", c.Proxy.MaxBodyBytes)
	c.validateStore(&ps)

	checkCIDRs(&ps, "client_ip.trusted_proxies", c.ClientIP.TrustedProxies)
	checkCIDRs(&ps, "ip_allowlist", c.IPAllowlist)
	checkCIDRs(&ps, "ip_denylist", c.IPDenylist)

	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) { // sorted: same output every run
		u := c.Upstreams[name]
		p := "upstreams." + name
		if !nameRE.MatchString(name) {
			ps.add(p, "upstream names use letters, digits, '_', '.', '-'")
		}
		c.validateUpstream(&ps, p, u)
	}

	checkNonNegative(&ps, "jwt.leeway", c.JWT.Leeway)
	for i, is := range c.JWT.Issuers {
		c.validateIssuer(&ps, fmt.Sprintf("jwt.issuers[%d]", i), is)
	}
	checkOneOf(&ps, "issuer.mfa", c.Issuer.MFA, "optional", "required_for_admins", "required")
	checkPositive(&ps, "issuer.access_ttl", c.Issuer.AccessTTL)
	checkPositive(&ps, "issuer.refresh_ttl", c.Issuer.RefreshTTL)
	checkNonNegative(&ps, "issuer.refresh_reuse_grace", c.Issuer.RefreshReuseGrace)
	if c.Issuer.RefreshReuseGrace > maxRefreshReuseGrace {
		ps.add("issuer.refresh_reuse_grace", "at most %s: a longer grace lets a stolen refresh token be used unnoticed", maxRefreshReuseGrace)
	}
	if c.Issuer.Enabled && c.Issuer.SigningKeyFile == "" {
		ps.add("issuer.signing_key_file", "required when the issuer is enabled")
	}
	if c.Issuer.Enabled && c.Issuer.Name == "" {
		ps.add("issuer.name", "required when the issuer is enabled (it is the iss of its tokens)")
	}
	for i, is := range c.JWT.Issuers {
		if c.Issuer.Enabled && is.Issuer == c.Issuer.Name {
			ps.add(fmt.Sprintf("jwt.issuers[%d].issuer", i), "%q is issuer.name, the built-in issuer's; tokens could not be told apart", is.Issuer)
		}
	}
	c.validateBootstrap(&ps)

	checkPath(&ps, "auth_api.prefix", c.AuthAPI.Prefix)
	if strings.HasSuffix(c.AuthAPI.Prefix, "/") {
		ps.add("auth_api.prefix", "must not end with '/', got %q", c.AuthAPI.Prefix)
	}
	checkPath(&ps, "auth_api.refresh_token_path", c.AuthAPI.RefreshTokenPath)
	checkPath(&ps, "console.path", c.Console.Path)
	if c.Console.Enabled {
		if !c.Issuer.Enabled {
			ps.add("console.enabled", "the web console signs in with the built-in issuer: it needs issuer.enabled")
		}
		if !strings.HasSuffix(c.Console.Path, "/") {
			ps.add("console.path", "must end with '/', got %q", c.Console.Path)
		}
	}
	checkPath(&ps, "forward_auth.path", c.ForwardAuth.Path)
	checkOneOf(&ps, "forward_auth.headers", c.ForwardAuth.Headers, "nginx", "traefik", "envoy")
	if c.ForwardAuth.Headers == "envoy" && strings.HasSuffix(c.ForwardAuth.Path, "/") {
		ps.add("forward_auth.path", "with headers: envoy the original path is appended to it, so it must not end with '/', got %q", c.ForwardAuth.Path)
	}

	if !keyPrefixRE.MatchString(c.APIKeys.Prefix) {
		ps.add("api_keys.prefix", "must be 1 to 16 lowercase letters or digits, got %q", c.APIKeys.Prefix)
	}
	for i, d := range c.APIKeys.AllowedExpiryDays {
		if d < 0 {
			ps.add(fmt.Sprintf("api_keys.allowed_expiry_days[%d]", i), "must be 0 (never) or a positive number of days, got %d", d)
		}
	}
	if !slices.Contains(c.APIKeys.AllowedExpiryDays, c.APIKeys.DefaultExpiryDays) {
		ps.add("api_keys.default_expiry_days", "%d is not in allowed_expiry_days %v", c.APIKeys.DefaultExpiryDays, c.APIKeys.AllowedExpiryDays)
	}

	if c.APIKeys.MaxScopesPerKey <= 0 {
		ps.add("api_keys.max_scopes_per_key", "must be > 0, got %d", c.APIKeys.MaxScopesPerKey)
	}
	if c.APIKeys.MaxKeysPerOwner <= 0 {
		ps.add("api_keys.max_keys_per_owner", "must be > 0, got %d", c.APIKeys.MaxKeysPerOwner)
	}
	c.APIKeys.validateHygiene(&ps)
	c.Notify.validate(&ps)

	checkOneOf(&ps, "rate_limits.mode", c.RateLimits.Mode, "redis", "local")
	if c.RateLimits.Mode == "redis" && c.Store.Type != "redis" {
		ps.add("rate_limits.mode", "redis mode needs store.type: redis")
	}
	c.RateLimits.JWT.validate(&ps, "rate_limits.jwt")
	c.RateLimits.APIKey.validate(&ps, "rate_limits.api_key")
	c.RateLimits.Login.validate(&ps, "rate_limits.login")
	c.RateLimits.LoginGlobal.validate(&ps, "rate_limits.login_global")
	c.RateLimits.Management.validate(&ps, "rate_limits.management")
	c.RateLimits.ManagementIP.validate(&ps, "rate_limits.management_ip")
	if c.RateLimits.PerIP != nil {
		c.RateLimits.PerIP.validate(&ps, "rate_limits.per_ip")
	}
	if ph := c.PasswordHashing; ph.Concurrency < 0 || ph.Queue < 0 || ph.MaxWait < 0 {
		ps.add("password_hashing", "concurrency, queue and max_wait must be >= 0 (0: the default)")
	}
	if c.RateLimits.MaxBuckets <= 0 {
		ps.add("rate_limits.max_buckets", "must be > 0, got %d", c.RateLimits.MaxBuckets)
	}

	for _, role := range slices.Sorted(maps.Keys(c.Policy.Roles)) {
		scopes := c.Policy.Roles[role]
		if !nameRE.MatchString(role) {
			ps.add("policy.roles."+role, "role names use letters, digits, '_', '.', '-'")
		}
		checkScopes(&ps, "policy.roles."+role, scopes)
	}
	checkOneOf(&ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	c.validateRoutes(&ps)
	return ps
}

func (c *Config) validateStore(ps *problems) {
	checkOneOf(ps, "store.type", c.Store.Type, "memory", "redis")
	checkOneOf(ps, "store.on_store_error", c.Store.OnStoreError, "serve_cached", "fail_closed")
	checkPositive(ps, "store.cache.ttl", c.Store.Cache.TTL)
	checkNonNegative(ps, "store.cache.stale_ttl", c.Store.Cache.StaleTTL)
	if c.Store.Cache.MaxEntries <= 0 {
		ps.add("store.cache.max_entries", "must be > 0, got %d", c.Store.Cache.MaxEntries)
	}
	if c.Store.Cache.NegativeMaxEntries <= 0 {
		ps.add("store.cache.negative_max_entries", "must be > 0, got %d", c.Store.Cache.NegativeMaxEntries)
	}
	if c.Store.Type != "redis" {
		return
	}
	if len(c.Store.Redis.Addrs) == 0 {
		ps.add("store.redis.addrs", "at least one address is required")
	}
	for i, a := range c.Store.Redis.Addrs {
		checkAddr(ps, fmt.Sprintf("store.redis.addrs[%d]", i), a)
	}
	if c.Store.Redis.DB != 0 && len(c.Store.Redis.Addrs) > 1 && c.Store.Redis.MasterName == "" {
		ps.add("store.redis.db", "Redis Cluster has only database 0")
	}
	r := c.Store.Redis
	for _, d := range []struct {
		p string
		v time.Duration
	}{{"dial_timeout", r.DialTimeout}, {"read_timeout", r.ReadTimeout}, {"write_timeout", r.WriteTimeout},
		{"pool_timeout", r.PoolTimeout}, {"min_retry_backoff", r.MinRetryBackoff},
		{"max_retry_backoff", r.MaxRetryBackoff}, {"health_interval", r.HealthInterval}} {
		checkPositive(ps, "store.redis."+d.p, d.v)
	}
	if r.MaxRetries < 0 || r.MaxRetries > 10 {
		ps.add("store.redis.max_retries", "must be between 0 and 10, got %d", r.MaxRetries)
	}
	if r.MaxRetryBackoff < r.MinRetryBackoff {
		ps.add("store.redis.max_retry_backoff", "must be >= min_retry_backoff (%s), got %s", r.MinRetryBackoff, r.MaxRetryBackoff)
	}
	if w := r.WaitReplicas; w.Replicas < -1 || w.Replicas > 16 {
		ps.add("store.redis.wait_replicas.replicas", "must be -1 (auto), 0 (off) or 1..16, got %d", w.Replicas)
	}
	if w := r.WaitReplicas; w.Timeout <= 0 || w.Timeout >= r.ReadTimeout {
		ps.add("store.redis.wait_replicas.timeout", "must be > 0 and below read_timeout (%s), got %s", r.ReadTimeout, w.Timeout)
	}
}

// minPasswordChars matches the user store's rule (gateway/user.MinPasswordChars).
const minPasswordChars = 10

func (c *Config) validateBootstrap(ps *problems) {
	b := c.Bootstrap
	if b.AdminEmail == "" && b.AdminPassword == "" {
		return
	}
	switch {
	case b.AdminEmail == "":
		ps.add("bootstrap.admin_email", "required with bootstrap.admin_password")
	case strings.Count(b.AdminEmail, "@") != 1 || strings.ContainsAny(b.AdminEmail, " \t\r\n"):
		ps.add("bootstrap.admin_email", "not an email address")
	}
	if n := utf8.RuneCountInString(b.AdminPassword.Value()); n < minPasswordChars {
		ps.add("bootstrap.admin_password", "at least %d characters, got %d", minPasswordChars, n)
	}
	if !c.Issuer.Enabled {
		ps.add("bootstrap.admin_email", "needs issuer.enabled: true (users sign in through the built-in issuer)")
	}
	if _, ok := c.Policy.Roles["admin"]; !ok {
		ps.add("bootstrap.admin_email", "the bootstrap user gets role \"admin\", which policy.roles lacks")
	}
}

func (c *Config) validateIssuer(ps *problems, p string, is JWTIssuer) {
	if is.Issuer == "" {
		ps.add(p+".issuer", "required")
	}
	sources := 0
	for _, set := range []bool{is.JWKSURL != "", is.HMACSecret != "", len(is.PublicKeyFiles) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		ps.add(p, "set exactly one of jwks_url, hmac_secret, public_key_files")
	}
	if is.JWKSURL != "" {
		checkURL(ps, p+".jwks_url", is.JWKSURL, true)
	}
	if len(is.Algorithms) == 0 {
		ps.add(p+".algorithms", "pin at least one algorithm")
	}
	for i, a := range is.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
		hmac := strings.HasPrefix(a, "HS")
		switch {
		case !slices.Contains([]string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}, a):
			ps.add(ap, "unsupported algorithm %q", a)
		case hmac && is.HMACSecret == "":
			ps.add(ap, "%s needs hmac_secret", a)
		case !hmac && is.HMACSecret != "":
			ps.add(ap, "%s cannot be checked with hmac_secret (algorithm confusion)", a)
		}
	}
}

func (c *Config) validateRoutes(ps *problems) {
	names := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			ps.add(p+".name", "required")
		case !nameRE.MatchString(r.Name):
			ps.add(p+".name", "use letters, digits, '_', '.', '-' (it labels metrics), got %q", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				ps.add(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
			}
			names[r.Name] = i
		}
		if len(r.Match) == 0 {
			ps.add(p+".match", "at least one pattern is required")
		}
		if r.Upstream == "" {
			ps.add(p+".upstream", "required")
		} else if _, ok := c.Upstreams[r.Upstream]; !ok {
			ps.add(p+".upstream", "unknown upstream %q%s", r.Upstream, suggestName(r.Upstream, c.Upstreams))
		}
		checkScopes(ps, p+".scopes", r.Scopes)
		checkScopes(ps, p+".scopes_all", r.ScopesAll)
		if r.Public && (len(r.Scopes) > 0 || len(r.ScopesAll) > 0) {
			ps.add(p+".public", "a public route cannot require scopes")
		}
		if r.RateLimit != nil {
			r.RateLimit.validate(ps, p+".rate_limit")
		}
		checkCIDRs(ps, p+".ip_allowlist", r.IPAllowlist)
		if r.MethodOverride != "" {
			checkOneOf(ps, p+".method_override", r.MethodOverride, "strip", "reject")
		}
		if r.Team != nil {
			checkTeamSource(ps, p, r)
		}
		if r.StripPrefix != "" {
			checkStripPrefix(ps, p, r)
		}
		if r.MaxBodyBytes != nil {
			checkBodyLimit(ps, p+".max_body_bytes", *r.MaxBodyBytes)
		}
		if r.CORS != nil {
			checkCORS(ps, p+".cors", r.CORS)
		}
	}
	c.validatePatterns(ps)
}

// ReservedPatterns are the ServeMux patterns the gateway serves itself on the main listener.
// Routes may not overlap them.
func (c *Config) ReservedPatterns() []string {
	p := c.AuthAPI.Prefix
	out := []string{p, p + "/", c.AuthAPI.RefreshTokenPath}
	if c.Issuer.Enabled {
		out = append(out, "/.well-known/jwks.json")
	}
	if c.ForwardAuth.Enabled {
		out = append(out, c.ForwardAuth.Path)
		if c.ForwardAuth.Headers == "envoy" {
			// Envoy's check request is the forward-auth path followed by the original path.
			out = append(out, c.ForwardAuth.Path+"/")
		}
	}
	if c.Console.Enabled {
		out = append(out, c.Console.Path)
	}
	return out
}

// validatePatterns registers every pattern in a ServeMux, as the router will, so syntax
// errors and conflicts (two patterns neither more specific than the other) are refused here.
func (c *Config) validatePatterns(ps *problems) {
	reserved := c.ReservedPatterns()
	for i, r := range reserved {
		if i > 0 && slices.Contains(reserved[:i], r) {
			ps.add("auth_api", "the gateway's own paths overlap each other: %q", r)
			return
		}
	}
	mux := http.NewServeMux()
	for _, r := range reserved {
		if err := register(mux, r, http.NotFoundHandler()); err != nil {
			ps.add("auth_api", "%v", err)
			return
		}
	}
	var seen []placedPattern
	for i, r := range c.Routes {
		for j, m := range r.Match {
			p := fmt.Sprintf("routes[%d].match[%d]", i, j)
			if own := overlapsReserved(m, reserved); own != "" {
				ps.add(p, "%q overlaps the gateway's own path %q", m, own)
				continue
			}
			if err := register(mux, m, http.NotFoundHandler()); err != nil {
				ps.add(p, "%s", explainConflict(m, err, reserved, seen))
				continue
			}
			seen = append(seen, placedPattern{p, m})
		}
	}
}

// placedPattern is a route pattern already registered, with its YAML path.
type placedPattern struct{ path, pattern string }

// explainConflict names the pattern m conflicts with, by path, instead of by Go source line.
func explainConflict(m string, err error, reserved []string, seen []placedPattern) string {
	if register(http.NewServeMux(), m, http.NotFoundHandler()) != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return fmt.Sprintf("invalid pattern %q: %s", m, msg)
	}
	for _, r := range reserved {
		if conflicts(r, m) {
			return fmt.Sprintf("%q conflicts with the gateway's own path %q", m, r)
		}
	}
	for _, s := range seen {
		if conflicts(s.pattern, m) {
			if s.pattern == m {
				return fmt.Sprintf("%q is already registered by %s", m, s.path)
			}
			return fmt.Sprintf("%q conflicts with %s %q: neither is more specific, so ServeMux cannot choose", m, s.path, s.pattern)
		}
	}
	return err.Error()
}

func conflicts(a, b string) bool {
	mux := http.NewServeMux()
	_ = register(mux, a, http.NotFoundHandler())
	return register(mux, b, http.NotFoundHandler()) != nil
}

// register adds pattern to mux and turns ServeMux's panic on a bad or conflicting pattern
// into an error. ServeMux offers no other way to check a pattern, and config must refuse
// such a file rather than crash on it.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("config: pattern %q: %v", pattern, v)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// overlapsReserved reports which reserved path a pattern would take requests from: one
// whose literal path lies inside a reserved subtree or is a reserved exact path.
func overlapsReserved(pattern string, reserved []string) string {
	_, rest, ok := strings.Cut(pattern, "/")
	if !ok {
		return ""
	}
	literal := "/" + rest
	if i := strings.Index(literal, "{"); i >= 0 {
		literal = literal[:i]
	}
	for _, r := range reserved {
		if strings.HasSuffix(r, "/") {
			if strings.HasPrefix(literal, r) || literal == strings.TrimSuffix(r, "/") {
				return r
			}
		} else if literal == r || literal == r+"/" {
			return r
		}
	}
	return ""
}

func suggestName[V any](name string, m map[string]V) string {
	best, bestD := "", 3
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// methodRE is an HTTP method (RFC 9110 token), as written in allowed_methods.
var methodRE = regexp.MustCompile("^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$")

// checkCORS refuses a CORS policy a browser would misread, or that allows more than it
// says: "*" with credentials, "*" among other origins, an origin with a path.
func checkCORS(ps *problems, p string, c *CORS) {
	if len(c.AllowedOrigins) == 0 {
		ps.add(p+".allowed_origins", "at least one origin is required (e.g. \"https://app.example.com\", or \"*\")")
	}
	for i, o := range c.AllowedOrigins {
		op := fmt.Sprintf("%s.allowed_origins[%d]", p, i)
		if o == "*" {
			if len(c.AllowedOrigins) > 1 {
				ps.add(op, "\"*\" allows every origin: list it alone")
			}
			if c.AllowCredentials {
				ps.add(op, "\"*\" cannot go with allow_credentials: true (browsers refuse it): list the origins")
			}
			continue
		}
		if err := checkOrigin(o); err != nil {
			ps.add(op, "%v", err)
		}
	}
	for i, m := range c.AllowedMethods {
		if !methodRE.MatchString(m) {
			ps.add(fmt.Sprintf("%s.allowed_methods[%d]", p, i), "not a method (upper case, e.g. GET): %q", m)
		}
	}
	for i, h := range c.AllowedHeaders {
		if !headerNameRE.MatchString(h) {
			ps.add(fmt.Sprintf("%s.allowed_headers[%d]", p, i), "not a header name: %q", h)
		}
	}
	for i, h := range c.ExposeHeaders {
		if !headerNameRE.MatchString(h) {
			ps.add(fmt.Sprintf("%s.expose_headers[%d]", p, i), "not a header name: %q", h)
		}
	}
	checkNonNegative(ps, p+".max_age", c.MaxAge)
}

// checkOrigin reports whether o is an origin as browsers send it: scheme://host[:port],
// lower case, nothing after; the host may start with "*." for any subdomain.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("not an origin (scheme://host[:port]): %q", o)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return fmt.Errorf("an origin is scheme://host[:port] with nothing after (no path, not even \"/\"): %q", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("write origins in lower case, as browsers send them: %q", o)
	}
	host := strings.TrimPrefix(u.Hostname(), "*.")
	if host == "" || strings.Contains(host, "*") {
		return fmt.Errorf("a wildcard is only \"*.\" at the start of the host: %q", o)
	}
	return nil
}

// checkBodyLimit refuses a body bound that is neither positive nor -1 (no bound): an
// explicit 0 would refuse every body, and is never read as "the default".
func checkBodyLimit(ps *problems, p string, n int64) {
	if n <= 0 && n != -1 {
		ps.add(p, "must be > 0 (bytes), or -1 for no bound, got %d (leave it out for the default)", n)
	}
}

func (rl RateLimit) validate(ps *problems, p string) {
	if rl.Requests <= 0 {
		ps.add(p+".requests", "must be > 0, got %d", rl.Requests)
	}
	checkPositiveOrOmit(ps, p+".per", rl.Per, "1m")
}

// maxRefreshReuseGrace bounds issuer.refresh_reuse_grace.
const maxRefreshReuseGrace = time.Minute

func checkAddr(ps *problems, p, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		ps.add(p, "want host:port (e.g. \":8080\"), got %q", addr)
	}
}

func checkPositive(ps *problems, p string, d time.Duration) {
	if d <= 0 {
		ps.add(p, "must be > 0, got %s", d)
	}
}

// checkPositiveOrOmit is checkPositive for a field whose default applies only when it is
// absent: the message says so, since an explicit 0 is never read as "the default".
func checkPositiveOrOmit(ps *problems, p string, d time.Duration, def string) {
	if d <= 0 {
		ps.add(p, "must be > 0, got %s (leave it out for the default %s)", d, def)
	}
}

func checkNonNegative(ps *problems, p string, d time.Duration) {
	if d < 0 {
		ps.add(p, "must not be negative, got %s", d)
	}
}

func checkOneOf(ps *problems, p, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		ps.add(p, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func checkPath(ps *problems, p, v string) {
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " {}?#") {
		ps.add(p, "must be a plain path starting with '/', got %q", v)
	}
}

// checkTracing checks tracing: the endpoint is an http(s) URL, the ratio a share.
func checkTracing(ps *problems, t Tracing) {
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		ps.add("tracing.sample_ratio", "must be between 0 and 1, got %v", t.SampleRatio)
	}
	if !t.Enabled {
		return
	}
	checkURL(ps, "tracing.endpoint", t.Endpoint, true)
	if strings.TrimSpace(t.ServiceName) == "" {
		ps.add("tracing.service_name", "required with tracing.enabled")
	}
}

func checkURL(ps *problems, p, raw string, required bool) {
	if raw == "" {
		if required {
			ps.add(p, "required")
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.add(p, "want an http:// or https:// URL with a host, got %q", raw)
		return
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		ps.add(p, "must not carry a query, fragment or credentials")
	}
}

func checkScopes(ps *problems, p string, scopes []string) {
	for i, s := range scopes {
		if !scopeRE.MatchString(s) {
			ps.add(fmt.Sprintf("%s[%d]", p, i), "invalid scope %q", s)
		}
	}
}

// ParsePrefixes turns IPs and CIDRs into prefixes; a bare IP is a /32 or /128.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses "10.0.0.0/8", "2001:db8::/32" or a bare IP.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("config: invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("config: invalid IP %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkCIDRs(ps *problems, p string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			ps.add(fmt.Sprintf("%s[%d]", p, i), "invalid IP or CIDR %q", s)
		}
	}
}

// validateHygiene checks api_keys.max_expiry_days and api_keys.hygiene.
func (k APIKeys) validateHygiene(ps *problems) {
	if k.MaxExpiryDays < 0 {
		ps.add("api_keys.max_expiry_days", "must be 0 (no bound) or a positive number of days, got %d", k.MaxExpiryDays)
	} else if k.MaxExpiryDays > 0 && k.DefaultExpiryDays == 0 {
		ps.add("api_keys.default_expiry_days", "0 (never) is refused by max_expiry_days %d: choose a default within it", k.MaxExpiryDays)
	} else if k.MaxExpiryDays > 0 && k.DefaultExpiryDays > k.MaxExpiryDays {
		ps.add("api_keys.default_expiry_days", "%d is beyond max_expiry_days %d", k.DefaultExpiryDays, k.MaxExpiryDays)
	}
	for _, f := range []struct {
		p string
		d Days
	}{{"api_keys.hygiene.max_age", k.Hygiene.MaxAge}, {"api_keys.hygiene.unused_after", k.Hygiene.UnusedAfter},
		{"api_keys.hygiene.expiring_within", k.Hygiene.ExpiringWithin}} {
		if f.d < 0 {
			ps.add(f.p, "must be >= 0 (0 turns the flag off), got %s", f.d.Duration())
		}
	}
}

// validate checks notify.webhooks: an http(s) URL, a secret and known events each.
func (n Notify) validate(ps *problems) {
	for i, w := range n.Webhooks {
		p := fmt.Sprintf("notify.webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add(p+".url", "must be an http or https URL")
		}
		if w.Secret == "" {
			ps.add(p+".secret", "required: every delivery is signed with it")
		}
		for j, e := range w.Events {
			if !slices.Contains(WebhookEvents, e) {
				ps.add(fmt.Sprintf("%s.events[%d]", p, j), "unknown event %q (one of %s)", e, strings.Join(WebhookEvents, ", "))
			}
		}
	}
}
