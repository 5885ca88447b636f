package gateway

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/gateway/fwdauth"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/policy"
)

// forwardAuth answers a proxy in front (nginx auth_request, Traefik ForwardAuth, Envoy
// ext_authz over HTTP) whether the request it describes may pass. The
// original method, URI and host are read the one way forward_auth.headers names
// (gateway/fwdauth): never one header pair as a fallback for another, and a check request
// that carries the other pair too, or a repeated value, is 400 malformed_request. The
// credential comes from the request's own headers. The same pipeline runs, up to the
// forwarding step: 200 with the X-Auth-* headers, or the very status and JSON body the
// gateway would have answered. Only client_ip.trusted_proxies may ask: anyone else could
// name any request.
func (p *pipeline) forwardAuth(w http.ResponseWriter, r *http.Request) {
	info := reqinfo.From(r.Context())
	if !info.PeerTrusted {
		info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "ip_not_allowed",
			Msg: "forward-auth answers only the proxies in client_ip.trusted_proxies"})
		return
	}
	o, err := fwdauth.Read(fwdauth.Mode(p.cfg.ForwardAuth.Headers),
		fwdauth.Check{Method: r.Method, Target: r.RequestURI, Host: r.Host, Header: r.Header}, p.cfg.ForwardAuth.Path)
	if err != nil {
		info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request", Msg: err.Error(), Err: err})
		return
	}
	// The proxy in front forwards the URI as the client sent it, not the gateway's cleaned
	// form: a path that cleaning would change ("/api/x/../../health", "%2e%2e", "//") is
	// refused, or the gateway would decide on "/health" while the upstream is asked for
	// "/api/x/../../health" and may read it as a path under /api/.
	if clean, err := policy.CleanPath(escapedPath(o.URL)); err == nil && clean != o.URL.Path {
		info.Reject(w, errUncleanForwardAuthPath)
		return
	}
	// A _method query parameter cannot be stripped from what the proxy forwards, and
	// Laravel, Symfony and Express's method-override would run that method.
	if _, ok := proxy.StripQueryMethodOverride(o.URL.RawQuery); ok {
		info.Reject(w, errForwardAuthQueryOverride)
		return
	}
	info.Decided.Method, info.Decided.Path = o.Method, o.URL.Path
	orig := r.Clone(r.Context())
	orig.Method, orig.URL, orig.RequestURI, orig.Host = o.Method, o.URL, o.URI, o.Host
	orig.Body, orig.ContentLength = http.NoBody, 0
	p.route(w, orig, true)
}

var errUncleanForwardAuthPath = &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
	Msg: "the original path has dot segments or empty segments (\"..\", \".\", \"%2e\", \"//\"): the proxy forwards it as sent, so it is refused rather than decided in a cleaned form the upstream may not see"}

var errForwardAuthQueryOverride = &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
	Msg: "the original URI has a _method query parameter, which an upstream may run as the method; the proxy forwards it as sent, so it is refused"}

// envoyCheck reports whether r is an Envoy ext_authz check request: with headers: envoy,
// the forward-auth path followed by the original path. It is recognised on the raw
// request-target, before path cleaning, so "/authz/../api/..." is decided as Envoy's
// original path, never cleaned into a route of its own and proxied.
func (p *pipeline) envoyCheck(r *http.Request) bool {
	fa := p.cfg.ForwardAuth
	return fa.Enabled && fwdauth.Mode(fa.Headers) == fwdauth.Envoy && strings.HasPrefix(r.RequestURI, fa.Path+"/")
}

// allowed is the end of a route's chain in forward-auth: the request may pass, with this
// identity.
func allowed(w http.ResponseWriter, r *http.Request) {
	info := reqinfo.From(r.Context())
	proxy.SetIdentity(w.Header(), info)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
