package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/apijson"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/ipallow"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqbody"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/policy"
)

// pipeline is everything one configuration compiles to. A reload builds a new pipeline
// and swaps it in whole; requests in flight finish on the one they started with.
type pipeline struct {
	s        *Server
	cfg      *config.Config
	resolver *ipallow.Resolver
	global   ipallow.List
	router   *policy.Router
	routes   []*route
	own      http.Handler // the gateway's own paths (management API)
	handler  http.Handler

	// upstreams are the proxies routes end in, with their targets' health.
	upstreams *upstreamSet
}

// route is one compiled entry of routes: its own chain from route IP list to upstream.
type route struct {
	cfg        config.Route
	ips        ipallow.List
	hasTestURL bool // its upstream has a test_url, so test keys may use it
	// rejectOverride refuses method-override headers (method_override: reject); otherwise
	// the proxy strips them.
	rejectOverride bool
	handler        http.Handler // the route's chain, ending in the upstream
	cors           *corsPolicy  // nil: no cors block
	preflight      http.Handler // answers CORS preflights (cors set)
	decide         http.Handler // the same chain ending in a forward-auth answer (200 + X-Auth-*)
}

// handler is the chain for every request on the main listener. The first middleware sees
// the request first; the matched route's own chain (routeHandler) runs last.
func (p *pipeline) buildHandler() http.Handler {
	srv := p.cfg.Server
	return chain(http.HandlerFunc(p.dispatch),
		reqbody.Guard(srv.BodyTimeout, srv.ReadTimeout), // a stalled body is cut off; an answer before the body is read closes the connection
		p.withInfo,             // request id and client IP, in reqinfo for every later step and log line
		p.s.tracing.Middleware, // the server span (continuing a trusted proxy's trace); nothing when tracing is off
		p.s.observe,            // metrics and the access log, read from reqinfo after the inner steps ran
		p.s.recoverPanics,      // a panic becomes a logged 500, inside observe so it is counted
		filterIP(p.global),     // ip_allowlist/ip_denylist: cheapest rejection first, before parsing or the store
	)
}

// routeHandler is the chain of one route, entered once dispatch has matched it. forward
// is false for the chain that answers forward-auth, which never sees a body.
func (p *pipeline) routeHandler(rt *route, fwd http.Handler, forward bool) http.Handler {
	mws := []func(http.Handler) http.Handler{
		filterIP(rt.ips), // route ip_allowlist, before the credential is even read
		p.limitPerIP,     // rate_limits.per_ip: per client address, before any credential is checked
	}
	if forward {
		// cors: CORS headers on every answer, the gateway's refusals included.
		mws = append([]func(http.Handler) http.Handler{rt.withCORS}, mws...)
		mws = append(mws, rt.limitBody(p.cfg.MaxBodyOf(rt.cfg))) // max_body_bytes: 413 before authentication
	}
	mws = append(mws, rt.refuseMethodOverride) // method_override: reject, a 400 before the store is asked
	if rt.cfg.Public {
		mws = append(mws, p.limitPublic(rt)) // a public route's rate_limit, per client address
	} else {
		mws = append(mws,
			p.authenticate,      // credential -> principal (and its allowed_ips), else 401/400/403/503
			rt.checkEnvironment, // a test key needs an upstream with test_url
			p.limit(rt),         // the credential's rate limit, else 429
			rt.authorize,        // route scopes (any of scopes, all of scopes_all), else 403
			rt.checkTeam,        // the team the request names must be one the credential acts for, else 403/400
		)
	}
	return chain(fwd, mws...)
}

// chain wraps h so that mws[0] is the outermost middleware.
func chain(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
	for _, mw := range slices.Backward(mws) {
		h = mw(h)
	}
	return h
}

func newPipeline(s *Server, cfg *config.Config) (*pipeline, error) {
	p := &pipeline{s: s, cfg: cfg}
	trusted, err := config.ParsePrefixes(cfg.ClientIP.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("gateway: client_ip.trusted_proxies: %w", err)
	}
	p.resolver = ipallow.NewResolver(trusted)
	if p.global, err = parseList(cfg.IPAllowlist, cfg.IPDenylist); err != nil {
		return nil, err
	}
	var prev *upstreamSet
	if cur := s.cur.Load(); cur != nil {
		prev = cur.upstreams
	}
	if p.upstreams, err = s.buildUpstreams(cfg, prev); err != nil {
		return nil, err
	}
	proxies := p.upstreams.proxies
	prs := make([]policy.Route, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		prs[i] = policy.Route{Name: rc.Name, Patterns: rc.Match}
		rt := &route{cfg: rc, hasTestURL: cfg.Upstreams[rc.Upstream].TestURL != "",
			rejectOverride: cfg.MethodOverrideOf(rc) == "reject"}
		if rt.ips, err = parseList(rc.IPAllowlist, nil); err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", rc.Name, err)
		}
		fwd, ok := proxies[rc.Upstream]
		if !ok {
			return nil, fmt.Errorf("gateway: route %s: unknown upstream %q", rc.Name, rc.Upstream)
		}
		if rc.CORS != nil {
			rt.cors = newCORSPolicy(rc.CORS)
			rt.preflight = p.preflightHandler(rt)
		}
		rt.handler = p.routeHandler(rt, stripPrefix(rc.StripPrefix, fwd), true)
		rt.decide = p.routeHandler(rt, http.HandlerFunc(allowed), false)
		p.routes = append(p.routes, rt)
	}
	if p.router, err = policy.NewRouter(prs, cfg.ReservedPatterns()); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	p.own = p.ownHandler()
	p.handler = p.buildHandler()
	return p, nil
}

func parseList(allow, deny []string) (ipallow.List, error) {
	a, err := config.ParsePrefixes(allow)
	if err != nil {
		return ipallow.List{}, fmt.Errorf("gateway: %w", err)
	}
	d, err := config.ParsePrefixes(deny)
	if err != nil {
		return ipallow.List{}, fmt.Errorf("gateway: %w", err)
	}
	return ipallow.List{Allow: a, Deny: d}, nil
}

// withInfo starts the request's reqinfo: its id (the client's, when sane) and client IP.
func (p *pipeline) withInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, info := reqinfo.New(r.Context())
		info.ID = r.Header.Get("X-Request-Id")
		if !saneRequestID(info.ID) {
			info.ID = newRequestID()
		}
		w.Header().Set("X-Request-Id", info.ID)
		info.ClientIP, info.PeerTrusted = p.resolver.ClientIP(r.RemoteAddr, r.Header["X-Forwarded-For"])
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// saneRequestID accepts 1 to 128 characters of [A-Za-z0-9._:-]: enough for UUIDs and
// trace ids, nothing that could break a log line or a header.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

var errIPNotAllowed = &httperr.Error{Status: http.StatusForbidden, Code: "ip_not_allowed", Msg: "your IP address is not allowed here"}

// filterIP refuses clients that list does not admit (403 ip_not_allowed). An empty list
// adds no step at all.
func filterIP(list ipallow.List) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(list.Allow) == 0 && len(list.Deny) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := reqinfo.From(r.Context())
			if !list.Admits(info.ClientIP) {
				info.Reject(w, errIPNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

var errMalformedRequest = &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
	Msg: "the request path or method cannot be read unambiguously"}

// dispatch cleans the path, matches it, and hands the request to the route's chain. The
// cleaned path is what is matched and what is forwarded, so no path trick
// can reach an upstream resource under a route with weaker scopes.
func (p *pipeline) dispatch(w http.ResponseWriter, r *http.Request) {
	if p.envoyCheck(r) {
		reqinfo.From(r.Context()).Route = "authgate"
		p.forwardAuth(w, r)
		return
	}
	p.route(w, r, false)
}

// route is dispatch for a request to forward (decide false), or one forward-auth asks
// about (decide true: the route's chain ends in a 200 with the X-Auth-* headers instead
// of the upstream, and the gateway's own paths are not served).
func (p *pipeline) route(w http.ResponseWriter, r *http.Request, decide bool) {
	info := reqinfo.From(r.Context())
	if decide {
		info.Route = "" // the decided request's route from here on: none until one matches
	}
	if !policy.MethodOK(r.Method) {
		info.Reject(w, errMalformedRequest)
		return
	}
	clean, err := policy.CleanPath(escapedPath(r.URL))
	if err != nil {
		info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
			Msg: "the request path cannot be cleaned unambiguously", Err: err})
		return
	}
	if clean != r.URL.Path || r.URL.RawPath != "" {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		r2.URL = &u
		r = r2
	}
	if !decide && p.servePreflight(w, r) {
		return // a CORS preflight, answered by the gateway for the route it asks about
	}
	m := p.router.Match(r)
	switch {
	case m.Route >= 0:
		rt := p.routes[m.Route]
		info.Route = rt.cfg.Name
		if ts := rt.cfg.Team; ts != nil && ts.Path != "" {
			// The team is read from the path as cleaned and matched, the very path that is
			// forwarded: no encoding trick names one team to the check and another upstream.
			if v, ok := policy.PathValue(m.Pattern, r.URL.Path, ts.Path); ok {
				r.SetPathValue(ts.Path, v)
			}
		}
		info.KeepCredentials = rt.cfg.ForwardCredentials
		if decide {
			rt.decide.ServeHTTP(w, r)
			return
		}
		rt.handler.ServeHTTP(w, r)
	case m.Reserved != "" && decide:
		// The gateway's own calls are never behind another proxy's auth check.
		info.Reject(w, &httperr.Error{Status: http.StatusNotFound, Code: "no_route", Msg: "no route matches this request"})
	case m.Reserved != "" && p.cfg.ForwardAuth.Enabled && strings.TrimSuffix(m.Reserved, "/") == p.cfg.ForwardAuth.Path:
		// (The path itself, or with headers: envoy its subtree, reached here only when the
		// raw target did not start with it: forwardAuth refuses that.)
		info.Route = "authgate"
		p.forwardAuth(w, r)
	case m.Reserved != "":
		info.Route = "authgate"
		p.serveOwn(w, r)
	case m.Status == http.StatusMethodNotAllowed:
		info.Reject(w, &httperr.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Msg: "this path does not accept " + r.Method, Header: http.Header{"Allow": {m.Allow}}})
	default:
		info.Reject(w, &httperr.Error{Status: http.StatusNotFound, Code: "no_route", Msg: "no route matches this request"})
	}
}

// defaultOwnTimeout bounds a call to the gateway's own API (login, management, console)
// unless Options.OwnTimeout says otherwise: its store calls end with the context, and so
// does reading its body.
const defaultOwnTimeout = 30 * time.Second

// serveOwn serves the gateway's own paths with a bounded body (413 request_too_large past
// apijson.MaxBody) and a bounded time. The time bounds reading the body too: a client
// trickling a byte every little while (each within server.body_timeout) would otherwise
// hold a login or management call open for as long as 64 KiB takes.
func (p *pipeline) serveOwn(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), p.s.opts.OwnTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		ctl := http.NewResponseController(w)
		// When the time is up, a read in progress ends at once (a deadline in the past)...
		stop := context.AfterFunc(ctx, func() { _ = ctl.SetReadDeadline(time.Now()) })
		defer stop() // runs before cancel: a finished call leaves the connection alone
		// ...and no later read starts, whatever deadline the body guard set since.
		r.Body = &ctxBody{ctx: ctx, rc: http.MaxBytesReader(w, r.Body, apijson.MaxBody)}
	}
	p.own.ServeHTTP(w, r)
}

// ctxBody is a request body that refuses to read once its context is done, with a timeout
// error (apijson answers 408 request_timeout).
type ctxBody struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if b.ctx.Err() != nil {
		return 0, os.ErrDeadlineExceeded
	}
	return b.rc.Read(p)
}

func (b *ctxBody) Close() error { return b.rc.Close() }

// escapedPath is the path as the client sent it. URL.EscapedPath is not: when RawPath
// holds a byte it would escape itself (e.g. '|'), it re-encodes the decoded Path, and an
// encoded '/' ("%2f") comes back as a real '/' that CleanPath can no longer refuse.
func escapedPath(u *url.URL) string {
	if u.RawPath != "" {
		if p, err := url.PathUnescape(u.RawPath); err == nil && p == u.Path {
			return u.RawPath
		}
	}
	return u.EscapedPath()
}

var errMethodOverride = &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
	Msg: "method overrides (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, a _method query parameter) are refused on this route"}

// refuseMethodOverride answers 400 malformed_request to a request carrying a
// method-override header, on a route with method_override: reject. With strip (the
// default) it adds no step: the proxy removes those headers. In forward-auth the
// described request's headers are checked the same way.
func (rt *route) refuseMethodOverride(next http.Handler) http.Handler {
	if !rt.rejectOverride {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, inQuery := proxy.StripQueryMethodOverride(r.URL.RawQuery); inQuery || proxy.HasMethodOverride(r.Header) {
			reqinfo.From(r.Context()).Reject(w, errMethodOverride)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkEnvironment refuses test credentials on a route whose upstream has no test_url:
// test traffic must never reach a live backend.
func (rt *route) checkEnvironment(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		if info.Env == "test" && !rt.hasTestURL {
			info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "environment_not_allowed",
				Msg: "test credentials are not accepted on route " + rt.cfg.Name})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorize checks the credential's scopes against the route: any one of scopes, and
// every one of scopes_all. Wildcards in the credential are honoured (policy.Grants).
func (rt *route) authorize(next http.Handler) http.Handler {
	anyOf, allOf := rt.cfg.Scopes, rt.cfg.ScopesAll
	if len(anyOf) == 0 && len(allOf) == 0 {
		return next
	}
	need := strings.Join(append(slices.Clone(anyOf), allOf...), " ")
	msg := policy.Needs(rt.cfg.Name, anyOf, allOf)
	refusal := &httperr.Error{Status: http.StatusForbidden, Code: "insufficient_scope", Msg: msg,
		Header: http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="` + need + `"`}}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		if !policy.Satisfies(info.Scopes, anyOf, allOf) {
			info.Reject(w, refusal)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a credential on non-public routes. Credential verification
// arrives with the API-key and JWT authenticators; until one is configured every
// credential is refused, so a protected route can never be reached without one.
func (p *pipeline) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		cred, err := auth.Extract(r.Header, p.cfg.APIKeys.Prefix)
		switch {
		case errors.Is(err, auth.ErrEmpty):
			info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_credentials",
				Msg: "the credential header is empty (an unset shell variable?): send X-API-Key: <key> or Authorization: Bearer <token>", Err: err})
			return
		case err != nil:
			info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_credentials",
				Msg: "send one credential: X-API-Key, Authorization: Token, or Authorization: Bearer", Err: err})
			return
		case cred.Kind == auth.None:
			info.Reject(w, &httperr.Error{Status: http.StatusUnauthorized, Code: "missing_credentials",
				Msg: "this route needs an API key or a bearer token", Header: http.Header{"Www-Authenticate": {`Bearer realm="authgate"`}}})
			return
		}
		info.Auth = cred.Kind.String()
		pr, err := p.s.authn.Authenticate(r.Context(), cred)
		if err != nil {
			info.Reject(w, err)
			return
		}
		info.Subject, info.Issuer, info.KeyID, info.Scopes, info.Org, info.Env = pr.Subject, pr.Issuer, pr.KeyID, pr.Scopes, pr.Org, pr.Env
		info.Teams, info.AllTeams = pr.Teams, pr.AllTeams
		if len(pr.Teams) == 1 && !pr.AllTeams {
			info.Team = pr.Teams[0]
		}
		if pr.RateLimit != nil {
			info.OwnLimit = ratelimit.Limit{Requests: pr.RateLimit.Requests, Per: pr.RateLimit.Per}
		}
		if len(pr.AllowedIPs) > 0 && !ipallow.Contains(pr.AllowedIPs, info.ClientIP) {
			// The credential's own allowed_ips: right after authentication, before anything
			// is spent on a request that may not come from here.
			info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "ip_not_allowed",
				Msg: "this credential cannot be used from your IP address"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into a logged 500. http.ErrAbortHandler is re-raised: it is
// how ReverseProxy aborts a response it cannot finish.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "panic serving request", slog.Any("panic", v))
			reqinfo.From(r.Context()).Reject(w, &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// observe counts and logs every request once, after the pipeline answered it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		info := reqinfo.From(r.Context())
		if info.Status == 0 {
			info.Status = sw.status
			if info.Status == 0 {
				info.Status = http.StatusOK
			}
		}
		s.record(r, info, start, d)
	})
}

// statusWriter remembers the status written. Unwrap lets http.ResponseController reach
// the connection's Flusher and Hijacker, which ReverseProxy needs for streaming.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(b)
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
