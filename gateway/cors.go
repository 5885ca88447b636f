package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// corsPolicy is a route's compiled cors block.
type corsPolicy struct {
	any         bool     // allowed_origins: ["*"]
	exact       []string // allowed origins, lower case
	wildcards   []string // "*.example.com" origins as scheme://  and .suffix pairs: "https://", ".example.com"
	credentials bool
	methods     string // Access-Control-Allow-Methods
	headers     string // Access-Control-Allow-Headers; "": mirror the preflight's request
	expose      string // Access-Control-Expose-Headers; "": none
	maxAge      string // Access-Control-Max-Age; "": none
}

func newCORSPolicy(c *config.CORS) *corsPolicy {
	p := &corsPolicy{credentials: c.AllowCredentials, headers: strings.Join(c.AllowedHeaders, ", "),
		expose: strings.Join(c.ExposeHeaders, ", ")}
	for _, o := range c.AllowedOrigins {
		switch scheme, host, _ := strings.Cut(o, "://"); {
		case o == "*":
			p.any = true
		case strings.HasPrefix(host, "*."):
			p.wildcards = append(p.wildcards, scheme+"://", host[1:])
		default:
			p.exact = append(p.exact, o)
		}
	}
	methods := c.AllowedMethods
	if len(methods) == 0 {
		methods = config.DefaultCORSMethods()
	}
	p.methods = strings.Join(methods, ", ")
	if c.MaxAge > 0 {
		p.maxAge = strconv.FormatInt(ceilSeconds(c.MaxAge), 10)
	}
	return p
}

// allowOrigin is the Access-Control-Allow-Origin for a request from origin: the origin
// itself when it is allowed, "*" for a policy of every origin (never with credentials),
// else "".
func (p *corsPolicy) allowOrigin(origin string) string {
	if p.any {
		return "*" // the same answer for everyone: nothing for a cache to tell apart
	}
	if origin == "" {
		return ""
	}
	o := strings.ToLower(origin)
	if slices.Contains(p.exact, o) {
		return origin
	}
	for i := 0; i < len(p.wildcards); i += 2 {
		rest, ok := strings.CutPrefix(o, p.wildcards[i])
		if !ok {
			continue
		}
		if sub, ok := strings.CutSuffix(rest, p.wildcards[i+1]); ok && sub != "" && subdomain(sub) {
			return origin
		}
	}
	return ""
}

// subdomain reports whether s is one or more DNS labels (letters, digits, '-', '.'):
// nothing a crafted Origin could use to smuggle another host or port past a wildcard.
func subdomain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.'
}

// isPreflight reports whether r is a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// answerPreflight answers a preflight itself, whatever the route needs: 204, with the
// Access-Control-* headers when the origin is allowed and none when it is not (the browser
// then refuses the request it was about to make). A preflight carries no credential and
// never reaches the upstream.
func (p *corsPolicy) answerPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	vary := "Origin, Access-Control-Request-Method"
	if p.headers == "" {
		vary += ", Access-Control-Request-Headers"
	}
	h.Add("Vary", vary)
	if ao := p.allowOrigin(r.Header.Get("Origin")); ao != "" {
		h.Set("Access-Control-Allow-Origin", ao)
		if p.credentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		h.Set("Access-Control-Allow-Methods", p.methods)
		switch {
		case p.headers != "":
			h.Set("Access-Control-Allow-Headers", p.headers)
		case r.Header.Get("Access-Control-Request-Headers") != "":
			h.Set("Access-Control-Allow-Headers", strings.Join(r.Header.Values("Access-Control-Request-Headers"), ", "))
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// preflightHandler is the chain of a route's preflights: the route's IP list and
// rate_limits.per_ip, then the answer. No credential is asked for.
func (p *pipeline) preflightHandler(rt *route) http.Handler {
	return chain(http.HandlerFunc(rt.cors.answerPreflight), filterIP(rt.ips), p.limitPerIP)
}

// withCORS adds the route's CORS headers to every answer to a request from an allowed
// origin: the upstream's and the gateway's own refusals alike (a page can read a 401).
// The gateway owns CORS on the route: Access-Control-* headers the upstream sets are
// replaced, or removed for an origin that is not allowed.
func (rt *route) withCORS(next http.Handler) http.Handler {
	if rt.cors == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&corsWriter{ResponseWriter: w, p: rt.cors, origin: r.Header.Get("Origin")}, r)
	})
}

// corsWriter sets the CORS headers when the answer starts.
type corsWriter struct {
	http.ResponseWriter
	p      *corsPolicy
	origin string
	done   bool
}

func (c *corsWriter) WriteHeader(code int) {
	if !c.done && code >= 200 {
		c.done = true
		c.p.setHeaders(c.ResponseWriter.Header(), c.origin)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *corsWriter) Write(b []byte) (int, error) {
	if !c.done {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Flush, Hijack, deadlines).
func (c *corsWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// setHeaders writes the CORS headers of an actual (not preflight) answer to origin.
func (p *corsPolicy) setHeaders(h http.Header, origin string) {
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
		"Access-Control-Expose-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"} {
		delete(h, k)
	}
	if !p.any && !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(strings.ToLower(v), "origin") }) {
		h.Add("Vary", "Origin")
	}
	ao := p.allowOrigin(origin)
	if ao == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", ao)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
}

// preflightRoute is the route a preflight asks about: the one that matches the request
// as the method it announces (Access-Control-Request-Method), if that route has a cors
// block; else nil, and the OPTIONS request is routed as any other.
func (p *pipeline) preflightRoute(r *http.Request) *route {
	m := r.Header.Get("Access-Control-Request-Method")
	if !methodToken(m) {
		return nil
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Method = m
	if res := p.router.Match(r2); res.Route >= 0 && p.routes[res.Route].cors != nil {
		return p.routes[res.Route]
	}
	return nil
}

// methodToken reports whether m is a method a preflight may announce (an upper-case
// token).
func methodToken(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// servePreflight answers r when it is a preflight for a route with a cors block, and
// reports whether it did.
func (p *pipeline) servePreflight(w http.ResponseWriter, r *http.Request) bool {
	if !isPreflight(r) {
		return false
	}
	rt := p.preflightRoute(r)
	if rt == nil {
		return false
	}
	reqinfo.From(r.Context()).Route = rt.cfg.Name
	rt.preflight.ServeHTTP(w, r)
	return true
}
