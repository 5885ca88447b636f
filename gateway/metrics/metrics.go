// Package metrics holds the gateway's Prometheus collectors. Names and labels are part of
// the product contract (docs/operations.md, Metrics); labels are bounded: route names from config, never
// paths, key ids, subjects or IPs.
package metrics

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is every collector of one gateway process. It is safe for concurrent use.
type Metrics struct {
	Requests         *prometheus.CounterVec   // route, method, code, auth
	Rejected         *prometheus.CounterVec   // reason, route, auth
	RequestDuration  *prometheus.HistogramVec // route
	UpstreamDuration *prometheus.HistogramVec // upstream
	ConfigReloads    *prometheus.CounterVec   // result
	StoreUp          prometheus.Gauge
	StoreErrors      *prometheus.CounterVec // op
	APIKeyEvents     *prometheus.CounterVec // event
	ActivityDropped  *prometheus.CounterVec // kind: activity, audit
	CredentialCache  *prometheus.CounterVec // result: hit, miss, negative_hit
	InvalidationLag  prometheus.Histogram
	// Unconfirmed counts replicas an invalidation stopped waiting for before they confirmed it.
	Unconfirmed       prometheus.Counter
	Logins            *prometheus.CounterVec // result
	JWKSRefresh       *prometheus.CounterVec // issuer, result
	RateLimitFallback prometheus.Gauge
	TLSReloads        *prometheus.CounterVec // result
	TLSCertExpiry     prometheus.Gauge
	APIKeys           *prometheus.GaugeVec   // state: active, expiring, stale, unused, expired
	WebhookDeliveries *prometheus.CounterVec // event, result

	// UpstreamRequests counts attempts per target: upstream, target (host:port), outcome.
	UpstreamRequests *prometheus.CounterVec
	// UpstreamTargetHealthy is 1 while a target is in rotation: upstream, target.
	UpstreamTargetHealthy *prometheus.GaugeVec

	gatherer prometheus.Gatherer
	reg      prometheus.Registerer
}

// New registers the collectors on reg, which is also what Handler serves.
func New(reg *prometheus.Registry) *Metrics {
	f := promauto.With(reg)
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_requests_total",
			Help: "Requests answered on the main listener, by route, method, status code and auth method.",
		}, []string{"route", "method", "code", "auth"}),
		Rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_rejected_requests_total",
			Help: "Requests the gateway refused itself, by error code.",
		}, []string{"reason", "route", "auth"}),
		RequestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_request_duration_seconds",
			Help:    "Time from request to answer on the main listener, by route.",
			Buckets: buckets,
		}, []string{"route"}),
		UpstreamDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_upstream_duration_seconds",
			Help:    "Time spent on the upstream exchange, response body included, by upstream.",
			Buckets: buckets,
		}, []string{"upstream"}),
		UpstreamRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_upstream_requests_total",
			Help: "Attempts at each upstream target by outcome (success: a response came, whatever its status; connect_error; error: failed after connecting; timeout). A retry is a second attempt.",
		}, []string{"upstream", "target", "outcome"}),
		UpstreamTargetHealthy: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_upstream_target_healthy",
			Help: "1 while an upstream target is in rotation, 0 while it is ejected after failing.",
		}, []string{"upstream", "target"}),
		ConfigReloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_config_reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
		StoreUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_store_up",
			Help: "1 while the credential store answers, 0 while it does not.",
		}),
		StoreErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_store_errors_total",
			Help: "Store operations that failed, by operation.",
		}, []string{"op"}),
		CredentialCache: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_credential_cache_total",
			Help: "Credential cache lookups by result (hit, miss, negative_hit).",
		}, []string{"result"}),
		InvalidationLag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "authgate_invalidation_lag_seconds",
			Help:    "Time from publishing a cache invalidation to applying it, per replica.",
			Buckets: buckets,
		}),
		Unconfirmed: f.NewCounter(prometheus.CounterOpts{
			Name: "authgate_invalidation_unconfirmed_total",
			Help: "Replicas a cache invalidation stopped waiting for before they confirmed it: they went silent (crashed or cut off from the store), did not confirm within two trust windows, or the caller stopped waiting.",
		}),
		APIKeyEvents: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_api_key_events_total",
			Help: "API key life-cycle events by type (created, edited, refreshed, rotated, revoked, used_from_new_ip).",
		}, []string{"event"}),
		ActivityDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_activity_dropped_total",
			Help: "Activity events and audit records dropped, by kind (activity, audit): their write failed and the bounded retry buffer was full, or the activity queue was.",
		}, []string{"kind"}),
		Logins: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_logins_total",
			Help: "Login attempts at the built-in issuer by result (success, invalid_login, mfa_required, rate_limited, error).",
		}, []string{"result"}),
		JWKSRefresh: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_jwks_refresh_total",
			Help: "JWKS fetches by issuer (the configured iss) and result (success, failure).",
		}, []string{"issuer", "result"}),
		RateLimitFallback: f.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_rate_limit_fallback",
			Help: "1 while rate_limits.mode redis cannot reach Redis and local limits apply instead.",
		}),
		TLSReloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_tls_reloads_total",
			Help: "Reloads of the main listener's certificate and key by result (success, failure).",
		}, []string{"result"}),
		TLSCertExpiry: f.NewGauge(prometheus.GaugeOpts{
			Name: "authgate_tls_certificate_expiry_seconds",
			Help: "NotAfter of the certificate the main listener serves, as a Unix time; 0 without TLS.",
		}),
		APIKeys: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_api_keys",
			Help: "API keys in the store by hygiene state (active, expiring, stale, unused, expired), refreshed every minute; the same store-wide count on every replica.",
		}, []string{"state"}),
		WebhookDeliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_webhook_deliveries_total",
			Help: "Webhook deliveries by event type and result (delivered, retried, failed, dropped).",
		}, []string{"event", "result"}),
		gatherer: reg,
		reg:      reg,
	}
	if reg == nil {
		m.reg = nil // not a typed nil: CacheEntries registers nothing
	}
	// The known label values exist from the start at 0, so a rate() or an alert on them
	// works before the first event.
	for _, r := range []string{"success", "failure"} {
		m.ConfigReloads.WithLabelValues(r)
		m.TLSReloads.WithLabelValues(r)
	}
	for _, op := range []string{"ping", "key_lookup", "owner_lookup", "token_revocation", "hygiene"} {
		m.StoreErrors.WithLabelValues(op)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// MethodLabel bounds the method label to the standard methods.
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// CodeLabel is the status code as a label, without an allocation for common codes.
func CodeLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// CacheTrusted exports, read at scrape time, authgate_credential_cache_trusted{cache}: 1
// while the named cache ("keys", "tokens") may answer from memory, because its
// invalidation subscription was heard from within the trust window and the other replicas
// wait for its confirmations; 0 while every lookup goes to the store (or, with the store
// down and serve_cached, to stale entries). It returns an error when the series is
// already registered.
func (m *Metrics) CacheTrusted(cache string, trusted func() bool) error {
	return m.cacheGauge("authgate_credential_cache_trusted",
		"1 while a credential cache (keys, tokens) may answer from memory: its invalidation subscription was heard from within the trust window, and the other replicas wait for its confirmations.",
		cache, func() float64 {
			if trusted() {
				return 1
			}
			return 0
		})
}

// InvalidationPeers exports, read at scrape time, authgate_invalidation_peers{cache}: how
// many other replicas this one hears on the cache's invalidation channel and waits for
// when it publishes an invalidation.
func (m *Metrics) InvalidationPeers(cache string, peers func() int) error {
	return m.cacheGauge("authgate_invalidation_peers",
		"Other replicas heard on a credential cache's (keys, tokens) invalidation channel within the trust window: each must confirm an invalidation before it is answered.",
		cache, func() float64 { return float64(peers()) })
}

// cacheGauge registers the gauge name{cache}, read at scrape time from value.
func (m *Metrics) cacheGauge(name, help, cache string, value func() float64) error {
	if m.reg == nil {
		return nil
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"cache": cache}}, value)
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("metrics: %s{cache=%q}: %w", name, cache, err)
	}
	return nil
}

// CacheEntries exports the sizes of one credential cache, read at scrape time, as
// authgate_credential_cache_entries{cache, kind}: kind "positive" (credentials the store
// knows, bounded by store.cache.max_entries) and "negative" (unknown ones, bounded by
// store.cache.negative_max_entries). cache names the cache ("keys", "tokens"). It returns
// an error when the series are already registered.
func (m *Metrics) CacheEntries(cache string, positive, negative func() int) error {
	if m.reg == nil {
		return nil
	}
	for kind, f := range map[string]func() int{"positive": positive, "negative": negative} {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "authgate_credential_cache_entries",
			Help:        "Entries in a credential cache, by cache (keys, tokens) and kind (positive, negative).",
			ConstLabels: prometheus.Labels{"cache": cache, "kind": kind},
		}, func() float64 { return float64(f()) })
		if err := m.reg.Register(g); err != nil {
			return fmt.Errorf("metrics: cache entries %s %s: %w", cache, kind, err)
		}
	}
	return nil
}
