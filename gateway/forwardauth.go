package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// forwardAuth answers a proxy in front (nginx auth_request, Traefik ForwardAuth, Envoy
// ext_authz over HTTP) whether the request it describes may pass (SPEC section 7): the
// original method and URI come from X-Forwarded-Method / X-Forwarded-Uri (or nginx's
// X-Original-Method / X-Original-URI), the credential from the request's own headers.
// The same pipeline runs, up to the forwarding step: 200 with the X-Auth-* headers, or
// the very status and JSON body the gateway would have answered. Those headers are
// believed only from client_ip.trusted_proxies: anyone else could name any request.
func (p *pipeline) forwardAuth(w http.ResponseWriter, r *http.Request) {
	info := reqinfo.From(r.Context())
	if !info.PeerTrusted {
		info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "ip_not_allowed",
			Msg: "forward-auth answers only the proxies in client_ip.trusted_proxies"})
		return
	}
	method := firstHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
	uri := firstHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if method == "" || uri == "" {
		info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
			Msg: "forward-auth needs X-Forwarded-Method and X-Forwarded-Uri (or X-Original-Method and X-Original-URI)"})
		return
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || !strings.HasPrefix(uri, "/") {
		info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
			Msg: "the forwarded URI is not an absolute path", Err: err})
		return
	}
	orig := r.Clone(r.Context())
	orig.Method, orig.URL, orig.RequestURI = method, u, uri
	if host := r.Header.Get("X-Forwarded-Host"); host != "" {
		orig.Host = host
	}
	orig.Body, orig.ContentLength = http.NoBody, 0
	p.route(w, orig, true)
}

// allowed is the end of a route's chain in forward-auth: the request may pass, with this
// identity.
func allowed(w http.ResponseWriter, r *http.Request) {
	info := reqinfo.From(r.Context())
	proxy.SetIdentity(w.Header(), info)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// firstHeader is the first of names the request carries exactly once; a repeated one is
// ignored (empty), so two values cannot be read two ways.
func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if vs := h.Values(n); len(vs) == 1 && vs[0] != "" {
			return vs[0]
		}
		if len(h.Values(n)) > 1 {
			return ""
		}
	}
	return ""
}
