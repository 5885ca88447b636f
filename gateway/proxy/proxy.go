// Package proxy forwards authorised requests to upstreams with httputil.ReverseProxy and
// keeps their headers clean: no client-sent identity header survives, the credential is
// dropped unless a route keeps it, and X-Forwarded-* are set as a well-behaved proxy does.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/balancer"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// NewTransport returns the Transport every upstream shares. Its idle pool is sized for a
// gateway under load: without it, each burst past the default of 2 idle connections per
// host opens new connections and leaves sockets in TIME_WAIT. It never uses an
// environment proxy and passes encodings through untouched.
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
}

// Upstream is where a proxy sends requests.
type Upstream struct {
	Name string
	// Live balances the live targets. nil: URL is the one live target.
	Live *balancer.Pool
	// Test balances the test environment's targets. nil: TestURL, or no test environment.
	Test    *balancer.Pool
	URL     *url.URL
	TestURL *url.URL // nil (and Test nil): no test environment
	Timeout time.Duration
	// Strip names request headers removed before forwarding in addition to StrippedHeaders
	// (proxy.strip_request_headers). Names match as a CGI upstream reads them: ASCII case
	// and '-' versus '_' ignored.
	Strip []string
}

// StrippedHeaders are the client-sent headers no forwarded request keeps, whoever sent
// them: method overrides (an upstream honouring one would run a method the route's scopes
// were not checked for), and headers that name the client's address, the original URL or
// an authenticated user, which upstreams and frameworks read as facts the gateway vouched
// for. X-Forwarded-*, X-Real-IP and Forwarded are kept from client_ip.trusted_proxies only.
var StrippedHeaders = []string{
	"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
	"True-Client-IP", "X-Client-IP", "Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
	"X-Cluster-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "X-Forwarded",
	"X-Original-URL", "X-Original-URI", "X-Original-Method", "X-Rewrite-URL", "X-Original-Host",
	"X-Remote-User", "Remote-User", "X-Authenticated-User",
	// oauth2-proxy's identity headers: a trusted proxy passes its client's own on.
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups", "X-Forwarded-Access-Token",
}

// MethodOverrideHeaders are the headers that ask an upstream to run another method than
// the request's. Matched as a CGI upstream reads them ('-' versus '_', any case).
var MethodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// HasMethodOverride reports whether h carries a method-override header in any spelling.
func HasMethodOverride(h http.Header) bool {
	for k := range h {
		for _, n := range MethodOverrideHeaders {
			if cgiEqualFold(k, strings.ToLower(n)) {
				return true
			}
		}
	}
	return false
}

// StripQueryMethodOverride returns rawQuery without its _method parameters, and whether
// it had any. Laravel and Symfony (with method parameter override on, Laravel's default)
// and Express's method-override('_method') read the method of a POST from the query
// string as well as from a form field, so "POST /comments/?_method=DELETE" runs DELETE.
// The name is read as PHP reads it: percent-decoded, leading spaces dropped, '.' and ' '
// as '_', anything from '[' on (array syntax) ignored, in any case. Other parameters are
// kept byte for byte.
func StripQueryMethodOverride(rawQuery string) (string, bool) {
	if rawQuery == "" {
		return rawQuery, false
	}
	pairs := strings.Split(rawQuery, "&")
	kept := pairs[:0]
	for _, pair := range pairs {
		if name, _, _ := strings.Cut(pair, "="); !methodParam(name) {
			kept = append(kept, pair)
		}
	}
	if len(kept) == len(pairs) {
		return rawQuery, false
	}
	return strings.Join(kept, "&"), true
}

// methodParam reports whether a raw query parameter name reads as _method.
func methodParam(name string) bool {
	if strings.ContainsAny(name, "%+") {
		d, err := url.QueryUnescape(name)
		if err != nil {
			return false
		}
		name = d
	}
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	if len(name) != len("_method") {
		return false
	}
	return strings.EqualFold(strings.NewReplacer(".", "_", " ", "_").Replace(name), "_method")
}

// Proxy forwards to one upstream, over its targets. It is safe for concurrent use.
type Proxy struct {
	up         Upstream
	live, test *balancer.Pool // test nil: no test environment
	transport  http.RoundTripper
	rp         *httputil.ReverseProxy
	strip      map[string]bool // CGI-folded names (lowercase, '-') of headers never forwarded
	metrics    *metrics.Metrics
	logger     *slog.Logger
}

// New returns a Proxy to up over transport.
func New(up Upstream, transport http.RoundTripper, m *metrics.Metrics, logger *slog.Logger) *Proxy {
	p := &Proxy{up: up, live: up.Live, test: up.Test, transport: transport, metrics: m, logger: logger, strip: map[string]bool{}}
	if p.live == nil && up.URL != nil {
		p.live = balancer.New(balancer.Options{Targets: []*balancer.Target{balancer.NewTarget(up.Name, up.URL, balancer.Metrics{}, nil)}})
	}
	if p.test == nil && up.TestURL != nil {
		p.test = balancer.New(balancer.Options{Targets: []*balancer.Target{balancer.NewTarget(up.Name, up.TestURL, balancer.Metrics{}, nil)}})
	}
	for _, n := range append(slices.Clone(StrippedHeaders), up.Strip...) {
		p.strip[cgiFold(n)] = true
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    roundTripFunc(p.roundTrip),
		BufferPool:   newBufferPool(),
		ErrorHandler: p.fail,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	return p
}

// ServeHTTP forwards r within the upstream's timeout.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := reqinfo.From(r.Context())
	env := ""
	if info != nil {
		info.Upstream = p.up.Name
		env = info.Env
	}
	pool := p.Pool(env)
	if pool == nil {
		// The pipeline refuses this earlier (environment_not_allowed); should a test
		// request get here anyway, it fails closed rather than reach the live URL.
		info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "environment_not_allowed",
			Msg: "test credentials are not accepted on this route", Err: errNoTestURL})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.up.Timeout)
	defer cancel()
	a := &attempt{Context: ctx, pool: pool, target: pool.Pick()}
	a.target.Acquire()
	defer func() { a.target.Release() }() // also when ReverseProxy aborts a response with a panic
	start := time.Now()
	p.rp.ServeHTTP(w, r.WithContext(a))
	p.metrics.UpstreamDuration.WithLabelValues(p.up.Name).Observe(time.Since(start).Seconds())
}

// Pool returns the targets a request goes to: the test environment's for env "test". A
// test request to an upstream without test_url is refused before the proxy
// (environment_not_allowed); should one arrive anyway, it has no pool and is refused here
// too.
func (p *Proxy) Pool(env string) *balancer.Pool {
	if env == "test" {
		return p.test
	}
	return p.live
}

// attempt is the context of one forwarded request: which pool it is balanced over and
// which target it is at. ServeHTTP picks the target; roundTrip moves it to another when
// the first could not be connected to.
type attempt struct {
	context.Context
	pool   *balancer.Pool
	target *balancer.Target
}

type attemptKey struct{}

// Value returns the attempt itself for attemptKey, else the parent's value.
func (a *attempt) Value(k any) any {
	if _, ok := k.(attemptKey); ok {
		return a
	}
	return a.Context.Value(k)
}

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// roundTrip sends req to its attempt's target and reports the outcome to the target's
// health. A request that could not connect (nothing was sent) is sent once more to
// another target in rotation when it is safe to repeat: GET, HEAD or OPTIONS without a
// body. Any other request, and any failure after the connection was made, is answered
// with the error.
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	a := attemptOf(req.Context())
	resp, err := p.transport.RoundTrip(req)
	if a == nil {
		return resp, err
	}
	o := outcome(req.Context(), err)
	a.pool.Report(a.target, o)
	if o != balancer.ConnectError || !retryable(req) {
		return resp, err
	}
	next := a.pool.PickOther(a.target)
	if next == nil {
		return resp, err
	}
	p.logger.LogAttrs(req.Context(), slog.LevelWarn, "upstream target unreachable; retrying on another",
		slog.String("upstream", p.up.Name), slog.String("target", a.target.Label), slog.String("retry_target", next.Label))
	a.target.Release()
	next.Acquire()
	a.target = next
	r2 := new(http.Request)
	*r2 = *req
	u := *req.URL
	u.Scheme, u.Host = next.URL.Scheme, next.URL.Host
	r2.URL = &u
	resp, err = p.transport.RoundTrip(r2)
	a.pool.Report(next, outcome(req.Context(), err))
	return resp, err
}

// retryable reports whether req may be sent again: an idempotent method without side
// effects in practice (GET, HEAD, OPTIONS, as nginx's and Envoy's defaults), no body, and
// time left.
func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return (req.Body == nil || req.Body == http.NoBody) && req.Context().Err() == nil
}

// outcome classifies the result of one round trip for the target's health and metrics.
func outcome(ctx context.Context, err error) balancer.Outcome {
	if err == nil {
		return balancer.Success
	}
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return balancer.Timeout
	case context.Canceled:
		return balancer.Canceled
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return balancer.ConnectError
	}
	return balancer.Error
}

var errNoTestURL = errors.New("proxy: test credential on an upstream without test_url")

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	info := reqinfo.From(pr.In.Context())
	if info == nil {
		info = &reqinfo.Info{}
	}
	pr.SetURL(attemptOf(pr.In.Context()).target.URL) // ServeHTTP picked it
	if q, ok := StripQueryMethodOverride(pr.Out.URL.RawQuery); ok {
		pr.Out.URL.RawQuery = q
	}

	h := pr.Out.Header
	for k := range h {
		if gatewayOwned(k) || (!info.PeerTrusted && forwardingHeader(k)) || p.stripped(k) {
			delete(h, k)
		}
	}
	if !info.KeepCredentials {
		h.Del("Authorization")
		h.Del("X-Api-Key")
	}
	if info.PeerTrusted {
		// A trusted proxy's chain and scheme are kept; SetXForwarded appends its address.
		if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = prior
		}
	}
	pr.SetXForwarded()
	if info.PeerTrusted {
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			h.Set("X-Forwarded-Proto", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			h.Set("X-Forwarded-Host", v)
		}
	}
	if sp := info.StrippedPrefix; sp != "" {
		// What the route stripped, after what a trusted proxy in front stripped already.
		if prior := h.Get("X-Forwarded-Prefix"); prior != "" && info.PeerTrusted {
			sp = strings.TrimSuffix(prior, "/") + sp
		}
		h.Set("X-Forwarded-Prefix", sp)
	}
	SetIdentity(h, info)
}

// SetIdentity writes the request id and, for an authenticated request, the X-Auth-*
// headers (docs/operations.md, Headers) from info: onto the forwarded request, or onto a forward-auth
// answer for the proxy in front to pass on.
func SetIdentity(h http.Header, info *reqinfo.Info) {
	h.Set("X-Request-Id", info.ID)
	if info.Auth == "" {
		return
	}
	h.Set("X-Auth-Method", info.Auth)
	h.Set("X-Auth-Subject", info.Subject)
	if info.Issuer != "" {
		// Another issuer's sub: the upstream must not take it for one of the gateway's
		// users with the same id.
		h.Set("X-Auth-Issuer", info.Issuer)
	}
	if info.KeyID != "" {
		h.Set("X-Auth-Key-Id", info.KeyID)
	}
	h.Set("X-Auth-Scopes", strings.Join(info.Scopes, " "))
	if info.Org != "" {
		h.Set("X-Auth-Org", info.Org)
	}
	if info.Team != "" {
		h.Set("X-Auth-Team", info.Team)
	}
	env := info.Env
	if env == "" {
		env = "live"
	}
	h.Set("X-Auth-Environment", env)
}

// gatewayOwned reports whether a client-sent header k is, or could be read by an upstream
// as, a header the gateway sets: X-Auth-* in any case, and the underscore spellings of
// X-Auth-*, X-Forwarded-* and X-Request-Id. CGI-style servers (PHP, WSGI, Rack) turn both
// '-' and '_' into '_', so "X_Auth_Subject" reaches them as HTTP_X_AUTH_SUBJECT, the same
// variable as ours.
func gatewayOwned(k string) bool {
	if len(k) > 7 && cgiEqualFold(k[:7], "x-auth-") {
		return true
	}
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	return cgiEqualFold(k, "x-request-id") || (len(k) > 12 && cgiEqualFold(k[:12], "x-forwarded-"))
}

// forwardingHeader reports whether k describes the client's connection as a proxy would
// (X-Forwarded-Port, X-Forwarded-Prefix, X-Real-IP, ...). Only a trusted proxy may send
// those; from anyone else they are forged.
func forwardingHeader(k string) bool {
	return (len(k) > 12 && cgiEqualFold(k[:12], "x-forwarded-")) || cgiEqualFold(k, "x-real-ip") || cgiEqualFold(k, "forwarded")
}

// stripped reports whether k is in the proxy's strip list, in any CGI spelling.
func (p *Proxy) stripped(k string) bool {
	var buf [64]byte
	if len(k) > len(buf) {
		return p.strip[cgiFold(k)]
	}
	b := buf[:len(k)]
	for i := 0; i < len(k); i++ {
		b[i] = foldByte(k[i])
	}
	return p.strip[string(b)] // no allocation: the compiler converts for the lookup only
}

// cgiFold is k lowercased with '_' as '-': the spelling cgiEqualFold compares.
func cgiFold(k string) string {
	b := []byte(k)
	for i := range b {
		b[i] = foldByte(b[i])
	}
	return string(b)
}

func foldByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// cgiEqualFold compares header names as a CGI gateway does: ASCII case and '-' vs '_'
// ignored. lower must be lowercase with '-'.
func cgiEqualFold(k, lower string) bool {
	if len(k) != len(lower) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// fail answers a failed exchange: 504 upstream_timeout when the upstream's time ran out,
// 502 upstream_error otherwise. A client that went away gets nothing and is logged as
// 499, without a rejection reason.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	info := reqinfo.From(r.Context())
	var he *httperr.Error
	var ne net.Error
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away, not the upstream. Logged as 499; not a rejection, so no
		// reason (authgate_rejected_requests_total counts only the gateway's refusals).
		if info != nil {
			info.Status = 499
		}
		return
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		he = &httperr.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Msg: "upstream " + p.up.Name + " did not answer in " + p.up.Timeout.String(), Err: err}
	default:
		he = &httperr.Error{Status: http.StatusBadGateway, Code: "upstream_error",
			Msg: "upstream " + p.up.Name + " could not be reached", Err: err}
	}
	target := ""
	if a := attemptOf(r.Context()); a != nil {
		target = a.target.Label
	}
	p.logger.LogAttrs(r.Context(), slog.LevelError, "upstream failed", slog.String("upstream", p.up.Name),
		slog.String("target", target), slog.String("error_code", he.Code), slog.String("error", err.Error()))
	info.Reject(w, he)
}

// bufferPool recycles the 32 KiB buffers ReverseProxy copies bodies through.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp *bufferPool) Get() []byte    { return *(bp.pool.Get().(*[]byte)) }
func (bp *bufferPool) Put(buf []byte) { bp.pool.Put(&buf) }
