// Package config defines authgate's configuration file (gateway.yaml): its types, defaults,
// loading with ${ENV} expansion, and validation whose every problem names file, line and field.
//
// The package imports nothing of the gateway's own; it is pure apart from reading the file.
package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole gateway configuration. The zero value is not useful; start from Default.
type Config struct {
	// Listen is the main listener address. Default: ":8080".
	Listen string `yaml:"listen"`
	// OpsListen serves /metrics, /healthz and /readyz; never the main listener. Default: "127.0.0.1:9090".
	OpsListen string `yaml:"ops_listen"`
	// OpsPprof serves net/http/pprof under /debug/pprof/ on the ops listener (never the
	// main one); applies on reload. Default: false.
	OpsPprof bool `yaml:"ops_pprof"`
	// TLS, when both files are set, makes the main listener HTTPS only (TLS >= 1.2, HTTP/2).
	TLS TLS `yaml:"tls"`
	// Server holds listener timeouts and the shutdown drain.
	Server Server `yaml:"server"`
	// Store is where credentials and shared state live.
	Store Store `yaml:"store"`
	// ClientIP says whose X-Forwarded-For is believed.
	ClientIP ClientIP `yaml:"client_ip"`
	// IPAllowlist admits only these IPs or CIDRs when non-empty. Default: empty (everyone).
	IPAllowlist []string `yaml:"ip_allowlist"`
	// IPDenylist refuses these IPs or CIDRs. Default: empty.
	IPDenylist []string `yaml:"ip_denylist"`
	// Upstreams are the APIs behind the gateway, by name.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// JWT configures accepted token issuers.
	JWT JWT `yaml:"jwt"`
	// Issuer is the built-in token issuer (login).
	Issuer Issuer `yaml:"issuer"`
	// AuthAPI is where the gateway serves its own login and management API.
	AuthAPI AuthAPI `yaml:"auth_api"`
	// Bootstrap holds the first credentials of a new install.
	Bootstrap Bootstrap `yaml:"bootstrap"`
	// APIKeys configures key form and expiry.
	APIKeys APIKeys `yaml:"api_keys"`
	// RateLimits are the per-auth-method defaults.
	RateLimits RateLimits `yaml:"rate_limits"`
	// Policy maps roles to scopes.
	Policy Policy `yaml:"policy"`
	// Proxy holds the header hygiene of forwarded requests.
	Proxy Proxy `yaml:"proxy"`
	// Routes are matched in net/http.ServeMux precedence, not in file order.
	Routes []Route `yaml:"routes"`
	// Console is the embedded web page.
	Console Console `yaml:"console"`
	// ForwardAuth is the decision-only endpoint for nginx, Traefik or Envoy.
	ForwardAuth ForwardAuth `yaml:"forward_auth"`
	// Log configures the JSON logger.
	Log Log `yaml:"log"`
	// Tracing exports OpenTelemetry traces over OTLP/HTTP. Default: off.
	Tracing Tracing `yaml:"tracing"`
	// PasswordHashing bounds the password hashing done on request paths.
	PasswordHashing PasswordHashing `yaml:"password_hashing"`
	// Notify sends life-cycle events to webhooks.
	Notify Notify `yaml:"notify"`
}

// PasswordHashing bounds argon2id work on request paths (logins, re-authentication, the
// users API) for the whole process: each hash holds issuer.password_hash memory for its
// duration. Beyond the bounds the answer is 503 server_busy with Retry-After. Changes need
// a restart.
type PasswordHashing struct {
	// Concurrency is the most hashes at once. Default: 0, the number of CPUs.
	Concurrency int `yaml:"concurrency"`
	// Queue is the most hashes waiting for a slot. Default: 0, as many as Concurrency.
	Queue int `yaml:"queue"`
	// MaxWait is the longest a hash waits in the queue. Default: 0, 1s.
	MaxWait time.Duration `yaml:"max_wait"`
}

// TLS names the main listener's certificate. Both empty means plain HTTP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the main listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Server holds the limits every http.Server of the gateway is built with.
type Server struct {
	// ReadHeaderTimeout bounds reading request headers (slowloris). Default: 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included; 0 = none. Default: 0
	// (a whole-request bound would cut long uploads; BodyTimeout bounds a stalled body).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// BodyTimeout is the longest wait for the next bytes of a request body; 0 = none.
	// Default: 60s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// WriteTimeout bounds writing a response, upstream wait included; 0 = none. Default: 0
	// (a bound would cut streaming answers; upstreams[].timeout bounds the upstream).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default: 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers. Default: 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// DrainDelay is how long /readyz reports 503 before the listeners stop accepting,
	// so a load balancer can take the replica out. Default: 0s.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM. Default: 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Store selects and configures the credential store.
type Store struct {
	// Type is "memory" (one process, for trying it out) or "redis". Default: "memory".
	Type string `yaml:"type"`
	// Redis is used when Type is "redis".
	Redis Redis `yaml:"redis"`
	// Cache is the in-process credential cache.
	Cache Cache `yaml:"cache"`
	// OnStoreError is "serve_cached" or "fail_closed". Default: "serve_cached".
	OnStoreError string `yaml:"on_store_error"`
}

// Redis is a single node (one address), a Cluster (several) or Sentinel (with MasterName).
type Redis struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	// Password never prints or logs its value.
	Password Secret `yaml:"password"`
	DB       int    `yaml:"db"`
	// KeyPrefix is prepended to every key and channel. Default: "authgate:".
	KeyPrefix string `yaml:"key_prefix"`
	// DialTimeout bounds connecting. Default: 200ms (a store on the same network).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound each socket read and write. Default: 200ms.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolTimeout bounds the wait for a free connection. Default: 200ms.
	PoolTimeout time.Duration `yaml:"pool_timeout"`
	// MaxRetries is how often a command failed for a network reason is retried. Default: 1.
	MaxRetries int `yaml:"max_retries"`
	// MinRetryBackoff and MaxRetryBackoff bound the pause before a retry. Default: 8ms, 64ms.
	MinRetryBackoff time.Duration `yaml:"min_retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// HealthInterval is how often Redis is pinged (each ping bounded by it), to know an
	// outage without traffic and to end one. Default: 500ms.
	HealthInterval time.Duration `yaml:"health_interval"`
	// WaitReplicas makes the writes whose loss would reopen access (revocations, user
	// changes, logout, refresh-family revocations, key creation) wait for replicas.
	WaitReplicas WaitReplicas `yaml:"wait_replicas"`
}

// WaitReplicas is store.redis.wait_replicas: after a security-relevant write, WAIT until
// Replicas replicas have it, for at most Timeout; when fewer confirm, the call answers 503.
type WaitReplicas struct {
	// Replicas is how many replicas must confirm. -1 (the default): auto, 1 when the
	// topology has replicas (always with Sentinel; with Cluster or one address when the
	// first check finds a replica), else 0. 0: never wait.
	Replicas int `yaml:"replicas"`
	// Timeout bounds each wait. Default: 100ms. It must be below read_timeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Cache bounds the in-process credential cache.
type Cache struct {
	// TTL is how long a verified credential is trusted without the store. Default: 30s.
	TTL time.Duration `yaml:"ttl"`
	// MaxEntries bounds the cache. Default: 100000.
	MaxEntries int `yaml:"max_entries"`
	// StaleTTL is how long cached good credentials keep working while the store is down
	// (serve_cached). Default: 5m.
	StaleTTL time.Duration `yaml:"stale_ttl"`
	// NegativeMaxEntries bounds the separate cache of credentials the store did not know,
	// so that a flood of made-up keys never evicts a good one. Default: 10000.
	NegativeMaxEntries int `yaml:"negative_max_entries"`
}

// ClientIP configures client address resolution.
type ClientIP struct {
	// TrustedProxies are CIDRs (or IPs) whose X-Forwarded-For is believed. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Upstream is one API behind the gateway.
type Upstream struct {
	// URL is where live traffic goes: one target. Exactly one of URL and Targets is set.
	URL string `yaml:"url"`
	// Targets are several servers of the same API, balanced by Balance. They share scheme
	// and path and differ in host:port. Exactly one of URL and Targets is set.
	Targets []string `yaml:"targets"`
	// TestURL is where test keys go; empty means test keys are refused on this upstream.
	TestURL string `yaml:"test_url"`
	// Timeout bounds the whole upstream exchange (504 upstream_timeout). Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Balance picks a target: "round_robin" or "least_requests". Default: round_robin.
	Balance string `yaml:"balance"`
	// Health is the passive health check of the targets.
	Health UpstreamHealth `yaml:"health"`
	// MaxConnections bounds the connections open to each target; a request past it waits
	// for one within Timeout. Default: 0 (no bound).
	MaxConnections int `yaml:"max_connections"`
	// TLS configures https:// targets: the CA they are verified with, the name they must
	// present, and the gateway's client certificate for mTLS. Default: the system roots.
	TLS UpstreamTLS `yaml:"tls"`
}

// UpstreamHealth is the passive health check: a target whose connections fail is taken
// out of rotation for a while.
type UpstreamHealth struct {
	// MaxFailures is how many transport failures in a row eject a target. Default: 1.
	MaxFailures int `yaml:"max_failures"`
	// EjectFor is how long an ejected target is left out before it is tried again.
	// Default: 10s.
	EjectFor time.Duration `yaml:"eject_for"`
}

// UpstreamTLS is the TLS client side of an upstream's https:// targets.
type UpstreamTLS struct {
	// CAFile holds the PEM certificates that sign the targets' certificates, instead of
	// the system roots. Default: "" (system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate and key (mTLS). Both or
	// neither. Default: "" (no client certificate).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the targets' certificates are verified for (and sent as SNI).
	// Default: "" (each target's host).
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether any TLS setting is made.
func (t UpstreamTLS) Enabled() bool { return t != UpstreamTLS{} }

// TargetURLs are the upstream's live targets: Targets, or URL alone.
func (u Upstream) TargetURLs() []string {
	if len(u.Targets) > 0 {
		return u.Targets
	}
	return []string{u.URL}
}

// JWT configures token validation.
type JWT struct {
	// Leeway is the allowed clock skew for exp and nbf. Default: 30s.
	Leeway time.Duration `yaml:"leeway"`
	// Issuers are the external token issuers accepted.
	Issuers []JWTIssuer `yaml:"issuers"`
}

// JWTIssuer is one accepted external issuer.
type JWTIssuer struct {
	Issuer         string   `yaml:"issuer"`
	Audiences      []string `yaml:"audiences"`
	JWKSURL        string   `yaml:"jwks_url"`
	HMACSecret     Secret   `yaml:"hmac_secret"`
	PublicKeyFiles []string `yaml:"public_key_files"`
	Algorithms     []string `yaml:"algorithms"`
	RoleClaim      string   `yaml:"role_claim"`
	// TeamClaim names the claim that lists the teams a token acts for (an array of team
	// IDs or a space separated string). Default: "" (the issuer's tokens hold no team).
	TeamClaim string `yaml:"team_claim"`
}

// Issuer is the built-in token issuer.
type Issuer struct {
	// Enabled turns on login, refresh and logout. Default: false.
	Enabled bool `yaml:"enabled"`
	// Name is the iss claim. Default: "authgate".
	Name string `yaml:"name"`
	// SigningKeyFile holds an Ed25519 or P-256 key, created with mode 0600 when missing.
	SigningKeyFile string `yaml:"signing_key_file"`
	// AccessTTL default: 1h. RefreshTTL default: 168h.
	AccessTTL  time.Duration `yaml:"access_ttl"`
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// RefreshReuseGrace is how long after a refresh token is spent it may be exchanged
	// again, for the same successor, without revoking its family (two tabs racing one
	// refresh). 0 turns it off. Default: 5s; at most 1m.
	RefreshReuseGrace time.Duration `yaml:"refresh_reuse_grace"`
	// MFA is "optional", "required_for_admins" or "required". Default: "optional".
	MFA string `yaml:"mfa"`
}

// AuthAPI places the gateway's own API.
type AuthAPI struct {
	// Prefix of login and management calls. Default: "/api/auth".
	Prefix string `yaml:"prefix"`
	// RefreshTokenPath is where a key refreshes itself. Default: "/api/refresh_token".
	RefreshTokenPath string `yaml:"refresh_token_path"`
}

// Bootstrap holds first credentials.
type Bootstrap struct {
	AdminEmail    string `yaml:"admin_email"`
	AdminPassword Secret `yaml:"admin_password"`
	AdminKey      Secret `yaml:"admin_key"`
}

// APIKeys configures API keys.
type APIKeys struct {
	// Prefix of every key. Default: "sk".
	Prefix string `yaml:"prefix"`
	// AllowedExpiryDays lists the durations a key may be created with; 0 = never. Default: [30, 90, 365, 0].
	AllowedExpiryDays []int `yaml:"allowed_expiry_days"`
	// DefaultExpiryDays must be one of AllowedExpiryDays. Default: 90.
	DefaultExpiryDays int `yaml:"default_expiry_days"`
	// HashPepper, when set, makes stored hashes HMAC-SHA-256 with this secret instead of
	// SHA-256. Keep it out of the store (environment or secret manager); changing it
	// invalidates every key. Default: empty.
	HashPepper Secret `yaml:"hash_pepper"`
	// MaxScopesPerKey is the most scopes one key may list. Default: 64.
	MaxScopesPerKey int `yaml:"max_scopes_per_key"`
	// MaxKeysPerOwner is the most keys one owner (created_by) may hold that are neither
	// revoked nor expired. Default: 1000.
	MaxKeysPerOwner int `yaml:"max_keys_per_owner"`
	// MaxExpiryDays, when > 0, is the longest life a key that is not an admin key may
	// have: "never" and longer lives are refused on create, rotate, refresh and edit.
	// Default: 0 (no bound beyond allowed_expiry_days).
	MaxExpiryDays int `yaml:"max_expiry_days"`
	// Hygiene sets when a key counts as stale, unused or expiring.
	Hygiene Hygiene `yaml:"hygiene"`
}

// Hygiene sets the thresholds of the key hygiene flags. Each is written in days ("90d")
// or as a Go duration ("36h"); 0 turns the flag off.
type Hygiene struct {
	// MaxAge: a key created (or made by a rotation) at least this long ago is stale. Default: 90d.
	MaxAge Days `yaml:"max_age"`
	// UnusedAfter: a key not used for this long (or never used and at least this old) is unused. Default: 30d.
	UnusedAfter Days `yaml:"unused_after"`
	// ExpiringWithin: a key that expires within this time is expiring. Default: 7d.
	ExpiringWithin Days `yaml:"expiring_within"`
}

// Notify configures outgoing notifications.
type Notify struct {
	// Webhooks receive signed JSON events. Default: none.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one receiver of events.
type Webhook struct {
	// URL is where events are POSTed (http or https).
	URL string `yaml:"url"`
	// Secret signs each delivery (HMAC-SHA256). Required.
	Secret Secret `yaml:"secret"`
	// Events lists the event types sent here; empty: all of them.
	Events []string `yaml:"events"`
}

// WebhookEvents are the event types a webhook can receive.
var WebhookEvents = []string{"key.created", "key.revoked", "key.expiring", "key.used_from_new_ip", "user.disabled"}

// Days is a duration written in whole days ("90d") or as a Go duration ("36h", "90m").
type Days time.Duration

// Duration is d as a time.Duration.
func (d Days) Duration() time.Duration { return time.Duration(d) }

// String writes d in days when it is a whole number of days, else as a Go duration.
func (d Days) String() string {
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// ParseDays reads "90d", "0" or a Go duration.
func ParseDays(s string) (Days, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseInt(n, 10, 32)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("invalid duration %q (write e.g. 90d, 36h)", s)
		}
		return Days(time.Duration(v) * 24 * time.Hour), nil
	}
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (write e.g. 90d, 36h)", s)
	}
	return Days(v), nil
}

// MarshalYAML writes d as String does, so a written-back file reads the same.
func (d Days) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads "90d", "0" or a Go duration.
func (d *Days) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDays(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// RateLimits are the per-method defaults and the mode.
type RateLimits struct {
	// Mode is "redis" (one limit across replicas) or "local". Default: "local" with the memory
	// store, "redis" with the Redis store.
	Mode   string    `yaml:"mode"`
	JWT    RateLimit `yaml:"jwt"`
	APIKey RateLimit `yaml:"api_key"`
	Login  RateLimit `yaml:"login"`
	// LoginGlobal limits all logins (and re-authentications) of one process together,
	// whatever their client IP or email: a token bucket of Requests per Per with a burst
	// of Requests. Default: 600 per 1m.
	LoginGlobal RateLimit `yaml:"login_global"`
	// Management limits the management API (auth_api.prefix and the refresh_token path)
	// per credential (key id or token subject), counted after authentication.
	// Default: 300 per 1m.
	Management RateLimit `yaml:"management"`
	// ManagementIP limits the management API per client IP (IPv6 per /64), counted before
	// authentication, so failed attempts count too. Default: 600 per 1m.
	ManagementIP RateLimit `yaml:"management_ip"`
	// PerIP limits every request that matches a route, public or not, per client IP (IPv6
	// per /64, after the trusted-proxy walk), counted before authentication, so a flood of
	// bad credentials from one address is cut off. Default: nil (no per-IP limit).
	PerIP *RateLimit `yaml:"per_ip"`
	// MaxBuckets bounds each in-process bucket store (mode local, and the fallback of mode
	// redis): credentials, login per client IP, login per email, management per credential
	// and management per client IP are kept apart, each holding at most MaxBuckets buckets. Default: 100000.
	MaxBuckets int `yaml:"max_buckets"`
}

// RateLimit is the limit for one authentication method, route or key.
type RateLimit struct {
	// Requests is the number of requests allowed per Per. Required.
	Requests int `yaml:"requests"`
	// Per is the window Requests applies to. Default: 1m.
	Per time.Duration `yaml:"per"`
}

// Policy maps role names to the scopes they grant.
type Policy struct {
	Roles map[string][]string `yaml:"roles"`
}

// Route is one entry of routes.
type Route struct {
	// Name labels metrics and logs. Required, unique.
	Name string `yaml:"name"`
	// Match holds net/http.ServeMux patterns: "[METHOD ][HOST]/path".
	Match []string `yaml:"match"`
	// Upstream names an entry of upstreams. Required.
	Upstream string `yaml:"upstream"`
	// Public routes need no credential.
	Public bool `yaml:"public"`
	// Scopes: the credential needs any one of them.
	Scopes []string `yaml:"scopes"`
	// ScopesAll: the credential needs all of them.
	ScopesAll []string `yaml:"scopes_all"`
	// RateLimit overrides the method default on this route. On a public route it is
	// counted per client IP (IPv6 per /64).
	RateLimit *RateLimit `yaml:"rate_limit"`
	// IPAllowlist admits only these IPs or CIDRs on this route when non-empty.
	IPAllowlist []string `yaml:"ip_allowlist"`
	// ForwardCredentials keeps Authorization and X-API-Key on the forwarded request.
	ForwardCredentials bool `yaml:"forward_credentials"`
	// MethodOverride overrides proxy.method_override on this route: "strip" or "reject".
	// Default: "" (proxy.method_override).
	MethodOverride string `yaml:"method_override"`
	// Team says where a request on this route names its team; the credential must act
	// for that team. Default: nil (the route does not check teams).
	Team *TeamSource `yaml:"team"`
	// StripPrefix is removed from the front of the path before it is forwarded (after the
	// route matched and was authorised on the whole path). Every pattern of the route
	// must start with it, at a segment boundary. Default: "" (forward the whole path).
	StripPrefix string `yaml:"strip_prefix"`
	// MaxBodyBytes bounds the request body on this route (413 request_too_large past it);
	// -1: no bound. Default: nil (proxy.max_body_bytes).
	MaxBodyBytes *int64 `yaml:"max_body_bytes"`
	// CORS is the route's cross-origin policy, answered by the gateway (preflights never
	// reach the upstream). Default: nil (no CORS headers; an OPTIONS is routed as any
	// other request).
	CORS *CORS `yaml:"cors"`
}

// CORS is the cross-origin resource sharing policy of a route.
type CORS struct {
	// AllowedOrigins are the origins allowed ("https://app.example.com"), with "*." as the
	// first label for any subdomain ("https://*.example.com"), or just "*" for every
	// origin. Required.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods answer a preflight's Access-Control-Request-Method.
	// Default: GET, HEAD, PUT, PATCH, POST, DELETE.
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders answer a preflight's Access-Control-Request-Headers. Default: empty
	// (the headers the preflight asks for are allowed).
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposeHeaders are response headers a page may read besides the safelisted ones.
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials lets a page send cookies and read the answer to a request with
	// them (Access-Control-Allow-Credentials: true). Not with the origin "*".
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight answer; 0: no
	// Access-Control-Max-Age (the browser's default, 5 s). Default: 0.
	MaxAge time.Duration `yaml:"max_age"`
}

// DefaultCORSMethods are a CORS policy's allowed_methods when it lists none.
func DefaultCORSMethods() []string {
	return []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}
}

// TeamSource is where a request names its team: exactly one of a path wildcard of every
// pattern of the route, a header, or a query parameter.
type TeamSource struct {
	// Path names a {wildcard} of every pattern of the route.
	Path string `yaml:"path"`
	// Header names a request header.
	Header string `yaml:"header"`
	// Query names a query parameter.
	Query string `yaml:"query"`
}

// Proxy is the header hygiene of every forwarded request.
type Proxy struct {
	// MethodOverride is what X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override
	// get: "strip" (removed before forwarding) or "reject" (400 malformed_request).
	// Default: "strip".
	MethodOverride string `yaml:"method_override"`
	// StripRequestHeaders are removed from every forwarded request, in addition to the
	// built-in list of client-identity headers. Default: empty.
	StripRequestHeaders []string `yaml:"strip_request_headers"`
	// MaxBodyBytes bounds the body of a forwarded request, for every route that sets no
	// max_body_bytes of its own: a larger body is 413 request_too_large. -1: no bound.
	// Default: 10 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// DefaultMaxBodyBytes is proxy.max_body_bytes when the file leaves it out.
const DefaultMaxBodyBytes = 10 << 20

// MaxBodyOf is route r's max_body_bytes, or proxy.max_body_bytes when r sets none; -1 is
// no bound.
func (c *Config) MaxBodyOf(r Route) int64 {
	if r.MaxBodyBytes != nil {
		return *r.MaxBodyBytes
	}
	return c.Proxy.MaxBodyBytes
}

// MethodOverrideOf is route r's method_override, or proxy.method_override when r sets none.
func (c *Config) MethodOverrideOf(r Route) string {
	if r.MethodOverride != "" {
		return r.MethodOverride
	}
	return c.Proxy.MethodOverride
}

// Console is the embedded web page.
type Console struct {
	Enabled bool   `yaml:"enabled"`
	Path    string `yaml:"path"`
}

// ForwardAuth is the decision endpoint for an external proxy.
type ForwardAuth struct {
	Enabled bool   `yaml:"enabled"`
	Path    string `yaml:"path"`
	// Headers names the proxy in front and so the one way the original request is read:
	// nginx (X-Original-Method / X-Original-URI), traefik (X-Forwarded-Method /
	// X-Forwarded-Uri) or envoy (the check request's own method and path after Path).
	// Never one as a fallback for another. Default: nginx.
	Headers string `yaml:"headers"`
}

// Tracing configures OpenTelemetry tracing. Changes need a restart.
type Tracing struct {
	// Enabled turns tracing on: a server span per request on the main listener, a client
	// span per upstream call and a span per Redis command. Default: false.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP traces URL of the collector.
	// Default: "http://localhost:4318/v1/traces".
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1; a trace continued from a
	// trusted proxy follows that proxy's decision. Default: 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default: "authgate".
	ServiceName string `yaml:"service_name"`
}

// Log configures the logger.
type Log struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// AccessLog writes one line per request. Default: true.
	AccessLog bool `yaml:"access_log"`
}

// Secret is a string that never prints or logs its value.
type Secret string

// String hides the value.
func (Secret) String() string { return "REDACTED" }

// GoString hides the value from %#v.
func (Secret) GoString() string { return `"REDACTED"` }

// LogValue hides the value from log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON hides the value when a struct holding it is logged whole: log/slog's JSON
// handler marshals nested values with encoding/json, which ignores LogValue.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// Value returns the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

// Default returns the configuration every file is decoded onto.
func Default() Config {
	return Config{
		Listen:    ":8080",
		OpsListen: "127.0.0.1:9090",
		Server: Server{
			ReadHeaderTimeout: 10 * time.Second,
			BodyTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ShutdownTimeout:   30 * time.Second,
		},
		Store: Store{
			Type: "memory",
			Redis: Redis{Addrs: []string{"127.0.0.1:6379"}, KeyPrefix: "authgate:",
				DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
				PoolTimeout: 200 * time.Millisecond, MaxRetries: 1, MinRetryBackoff: 8 * time.Millisecond,
				MaxRetryBackoff: 64 * time.Millisecond, HealthInterval: 500 * time.Millisecond,
				WaitReplicas: WaitReplicas{Replicas: -1, Timeout: 100 * time.Millisecond}},
			Cache:        Cache{TTL: 30 * time.Second, MaxEntries: 100000, StaleTTL: 5 * time.Minute, NegativeMaxEntries: 10000},
			OnStoreError: "serve_cached",
		},
		JWT: JWT{Leeway: 30 * time.Second},
		Issuer: Issuer{
			Name:           "authgate",
			SigningKeyFile: "./data/signing-key.pem",
			AccessTTL:      time.Hour,
			RefreshTTL:     168 * time.Hour,
			MFA:            "optional",

			RefreshReuseGrace: 5 * time.Second,
		},
		AuthAPI: AuthAPI{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token"},
		APIKeys: APIKeys{Prefix: "sk", AllowedExpiryDays: []int{30, 90, 365, 0}, DefaultExpiryDays: 90,
			MaxScopesPerKey: 64, MaxKeysPerOwner: 1000,
			Hygiene: Hygiene{MaxAge: Days(90 * 24 * time.Hour), UnusedAfter: Days(30 * 24 * time.Hour),
				ExpiringWithin: Days(7 * 24 * time.Hour)}},
		RateLimits: RateLimits{
			JWT:        RateLimit{Requests: 1000, Per: time.Minute},
			APIKey:     RateLimit{Requests: 100, Per: time.Minute},
			Login:      RateLimit{Requests: 10, Per: time.Minute},
			MaxBuckets: 100000,
			// About what two cores hash with the default argon2id costs, sustained.
			LoginGlobal: RateLimit{Requests: 600, Per: time.Minute},
			// The console and the CLI make a few calls per action: far below these.
			Management:   RateLimit{Requests: 300, Per: time.Minute},
			ManagementIP: RateLimit{Requests: 600, Per: time.Minute},
		},
		Proxy:       Proxy{MethodOverride: "strip", MaxBodyBytes: DefaultMaxBodyBytes},
		Console:     Console{Path: "/console/"},
		ForwardAuth: ForwardAuth{Path: "/authz", Headers: "nginx"},
		Log:         Log{Level: "info", AccessLog: true},
		Tracing:     Tracing{Endpoint: "http://localhost:4318/v1/traces", SampleRatio: 1, ServiceName: "authgate"},
	}
}
