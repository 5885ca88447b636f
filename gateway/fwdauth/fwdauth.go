// Package fwdauth reads the original request that a proxy in front (nginx auth_request,
// Traefik forwardAuth, Envoy ext_authz over HTTP) describes to the forward-auth endpoint.
//
// Each proxy describes it its own way, and each passes the client's own headers through
// as well, so the operator names the proxy (forward_auth.headers) and exactly one way is
// believed: never one header pair as a fallback for another. A check request that also
// carries a header the mode does not read, or a repeated one, is refused: a client could
// have sent it.
package fwdauth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Mode names the proxy in front, and so the one way the original request is read.
type Mode string

const (
	// Nginx reads X-Original-Method, X-Original-URI and X-Forwarded-Host, which the
	// auth_request location sets with proxy_set_header (overwriting the client's).
	Nginx Mode = "nginx"
	// Traefik reads X-Forwarded-Method, X-Forwarded-Uri and X-Forwarded-Host, which the
	// forwardAuth middleware sets itself when trustForwardHeader is false.
	Traefik Mode = "traefik"
	// Envoy reads the check request itself: ext_authz over HTTP sends the original method
	// as its method, the original path and query appended to path_prefix as its path, and
	// the original Host as its Host.
	Envoy Mode = "envoy"
)

// Modes are the values forward_auth.headers accepts.
func Modes() []string { return []string{string(Nginx), string(Traefik), string(Envoy)} }

// The headers the modes read. Names are in canonical form (http.Header keys).
const (
	originalMethod  = "X-Original-Method"
	originalURI     = "X-Original-Uri"
	forwardedMethod = "X-Forwarded-Method"
	forwardedURI    = "X-Forwarded-Uri"
	forwardedHost   = "X-Forwarded-Host"
)

// Check is the forward-auth request as the endpoint received it.
type Check struct {
	Method string      // the check request's own method
	Target string      // its request-target as sent (http.Request.RequestURI)
	Host   string      // its Host
	Header http.Header // its headers, keys in canonical form
}

// Original is the request the proxy asks about.
type Original struct {
	Method string
	// URI is the absolute path and query as the client sent them: always starts with a
	// single '/', never a scheme, an authority or a fragment.
	URI string
	// URL is URI parsed: Path (decoded), RawPath, RawQuery; Scheme and Host are empty.
	URL *url.URL
	// Host is the host the client asked for, for host patterns.
	Host string
}

// Read returns the original request c describes in mode m. prefix is the forward-auth
// path (forward_auth.path): Envoy appends the original path to it. Any ambiguity is an
// error; its message names headers, never their values.
func Read(m Mode, c Check, prefix string) (Original, error) {
	var method, uri, host string
	var err error
	switch m {
	case Nginx, Traefik:
		mh, uh, other := originalMethod, originalURI, [2]string{forwardedMethod, forwardedURI}
		if m == Traefik {
			mh, uh, other = forwardedMethod, forwardedURI, [2]string{originalMethod, originalURI}
		}
		if err := refuse(c.Header, m, other[:]...); err != nil {
			return Original{}, err
		}
		if method, err = one(c.Header, mh); err != nil {
			return Original{}, err
		}
		if uri, err = one(c.Header, uh); err != nil {
			return Original{}, err
		}
		if host, err = one(c.Header, forwardedHost); err != nil {
			return Original{}, err
		}
	case Envoy:
		if err := refuse(c.Header, m, originalMethod, originalURI, forwardedMethod, forwardedURI, forwardedHost); err != nil {
			return Original{}, err
		}
		rest, ok := strings.CutPrefix(c.Target, prefix)
		if !ok || prefix == "" || !strings.HasPrefix(rest, "/") {
			return Original{}, fmt.Errorf("forward_auth.headers is envoy: the check request's path must be %s followed by the original path (http_service.path_prefix)", prefix)
		}
		method, uri, host = c.Method, rest, c.Host
	default:
		return Original{}, fmt.Errorf("forward_auth.headers %q is not one of %s", string(m), strings.Join(Modes(), ", "))
	}
	if !token(method) {
		return Original{}, fmt.Errorf("the original method is not an HTTP method token")
	}
	u, err := parseURI(uri)
	if err != nil {
		return Original{}, err
	}
	if !hostOK(host) {
		return Original{}, fmt.Errorf("the original host is not a single host name")
	}
	return Original{Method: method, URI: uri, URL: u, Host: host}, nil
}

// refuse is an error when h carries any of names, even empty: in mode m the proxy never
// sends them, so a client did.
func refuse(h http.Header, m Mode, names ...string) error {
	for _, n := range names {
		if _, ok := h[n]; ok {
			return fmt.Errorf("forward_auth.headers is %s, which never reads %s: a request carrying it is refused (set forward_auth.headers to match the proxy, and have the proxy blank the headers it does not set)", m, n)
		}
	}
	return nil
}

// one is the single non-empty value of h[name].
func one(h http.Header, name string) (string, error) {
	vs := h[name]
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return "", fmt.Errorf("the check request has no %s", name)
	case len(vs) > 1:
		return "", fmt.Errorf("the check request carries %s more than once", name)
	}
	return vs[0], nil
}

// token reports whether s is an RFC 9110 token, the form of a method.
func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// parseURI reads an origin-form request-target: a path starting with '/', then an
// optional query. Only visible ASCII; no fragment. A path starting with "//" stays a path
// (url.ParseRequestURI would read an authority from it).
func parseURI(uri string) (*url.URL, error) {
	if !strings.HasPrefix(uri, "/") {
		return nil, fmt.Errorf("the original URI is not an absolute path")
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, fmt.Errorf("the original URI holds a byte a request-target cannot")
		}
	}
	path, query, hasQuery := strings.Cut(uri, "?")
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("the original URI's path is not validly escaped: %w", err)
	}
	u := &url.URL{Path: decoded, RawQuery: query, ForceQuery: hasQuery && query == ""}
	if u.EscapedPath() != path {
		u.RawPath = path
	}
	return u, nil
}

// hostOK accepts one host name or address, with an optional port: no list, no path.
func hostOK(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_:[]", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
