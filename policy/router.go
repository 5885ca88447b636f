package policy

import (
	"fmt"
	"net/http"
	"strings"
)

// Route is what the router knows of one route: its name and its ServeMux patterns.
type Route struct {
	Name     string
	Patterns []string
}

// Match is the outcome of routing one request.
type Match struct {
	// Route is the index of the matched route in the slice given to NewRouter, or -1.
	Route int
	// Reserved is the gateway's own pattern that matched, or "".
	Reserved string
	// Status is 0 on a match, else 404 (no pattern) or 405 (a pattern for another method).
	Status int
	// Allow lists the methods that would match, with Status 405.
	Allow string
	// Pattern is the pattern that matched, for explanations.
	Pattern string
}

// Router matches requests to routes with net/http.ServeMux: its pattern syntax, its
// precedence (the most specific pattern wins) and its refusal of conflicting patterns.
// A Router is immutable and safe for concurrent use.
type Router struct {
	mux *http.ServeMux
}

type routeIndex int

func (routeIndex) ServeHTTP(http.ResponseWriter, *http.Request) {}

type reservedPattern string

func (reservedPattern) ServeHTTP(http.ResponseWriter, *http.Request) {}

// NewRouter compiles routes and the gateway's reserved patterns into one ServeMux. A bad
// or conflicting pattern is an error naming the route.
func NewRouter(routes []Route, reserved []string) (*Router, error) {
	mux := http.NewServeMux()
	for _, p := range reserved {
		if err := register(mux, p, reservedPattern(p)); err != nil {
			return nil, err
		}
	}
	for i, r := range routes {
		for _, p := range r.Patterns {
			if err := register(mux, patternHost(p), routeIndex(i)); err != nil {
				return nil, fmt.Errorf("policy: route %q: %w", r.Name, err)
			}
		}
	}
	return &Router{mux: mux}, nil
}

// patternHost puts a pattern's host in CleanHost form, the form requests are matched in:
// a pattern for "Admin.example.com" or "admin.example.com:8443" would otherwise never
// match, and its requests would fall through to a weaker host-less route.
func patternHost(pattern string) string {
	slash := strings.IndexByte(pattern, '/')
	if slash <= 0 {
		return pattern
	}
	start := strings.LastIndexAny(pattern[:slash], " \t") + 1 // after the method, if any
	if start == slash {
		return pattern
	}
	return pattern[:start] + CleanHost(pattern[start:slash]) + pattern[slash:]
}

// register turns ServeMux's panic on a bad or conflicting pattern into an error; ServeMux
// offers no other way to check one.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("policy: pattern %q: %v", pattern, v)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// Match routes r, whose URL.Path must already be the output of CleanPath (with RawPath
// empty). The host is matched in CleanHost form. The router never redirects: a request for
// "/docs" when only "/docs/" is registered is not found, as the path was sent.
func (rt *Router) Match(r *http.Request) Match {
	if hostNeedsCleaning(r.Host) {
		// Match on the CleanHost form; r itself keeps the Host it was sent with, which is
		// what X-Forwarded-Host reports upstream.
		mr := *r
		mr.Host = CleanHost(r.Host)
		r = &mr
	}
	h, pattern := rt.mux.Handler(r)
	switch h := h.(type) {
	case routeIndex:
		return Match{Route: int(h), Pattern: pattern}
	case reservedPattern:
		return Match{Route: -1, Reserved: string(h), Pattern: pattern}
	}
	status, allow := Unmatched(h, r)
	return Match{Route: -1, Status: status, Allow: allow}
}

// Unmatched tells what ServeMux's own handler h (from mux.Handler for a request no
// pattern matched) would answer, without sending it: 405 with the Allow list when a
// pattern matches for another method, else 404 (a redirect counts as 404: the gateway
// never redirects). Callers then answer in their own JSON format.
func Unmatched(h http.Handler, r *http.Request) (status int, allow string) {
	var rec statusRecorder
	h.ServeHTTP(&rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		return http.StatusMethodNotAllowed, rec.header.Get("Allow")
	}
	return http.StatusNotFound, ""
}

// hostNeedsCleaning reports whether CleanHost would change host other than by dropping
// its port, which ServeMux ignores itself: an uppercase letter or a trailing dot.
func hostNeedsCleaning(host string) bool {
	name := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name = host[:i]
	}
	if strings.HasSuffix(name, ".") {
		return true
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return true
		}
	}
	return false
}

// statusRecorder keeps the status and headers ServeMux's own handlers write.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header {
	if s.header == nil {
		s.header = http.Header{}
	}
	return s.header
}

func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

// MethodOK reports whether m is an uppercase HTTP token. Methods are case-sensitive, and
// a lowercase "get" could match a method-less pattern here but be served as GET upstream.
func MethodOK(m string) bool {
	if m == "" || m == http.MethodConnect {
		return false
	}
	return strings.IndexFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) < 0
}
