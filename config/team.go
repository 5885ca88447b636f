package config

import (
	"regexp"
	"strings"
)

// queryNameRE is a query parameter name a team source may use.
var queryNameRE = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,128}$`)

// checkTeamSource checks routes[i].team: exactly one source; a path source names a
// single-segment {wildcard} of every pattern of the route; a header is a field name the
// gateway does not own; and the route is not public (a team check needs a credential).
func checkTeamSource(ps *problems, p string, r Route) {
	t := r.Team
	n := 0
	for _, v := range []string{t.Path, t.Header, t.Query} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		ps.add(p+".team", "set exactly one of path, header or query")
		return
	}
	if r.Public {
		ps.add(p+".team", "a public route cannot check teams: it has no credential to check")
	}
	switch {
	case t.Path != "":
		for j, m := range r.Match {
			if !hasWildcard(m, t.Path) {
				ps.add(p+".team.path", "{%s} is not a wildcard of routes match[%d] %q: a path source must name a single-segment wildcard of every pattern of the route", t.Path, j, m)
			}
		}
	case t.Header != "":
		lower := strings.ToLower(t.Header)
		switch {
		case !headerNameRE.MatchString(t.Header):
			ps.add(p+".team.header", "%q is not a header name", t.Header)
		case strings.HasPrefix(lower, "x-auth-") || lower == "authorization" || lower == "x-api-key" || lower == "cookie":
			ps.add(p+".team.header", "%q is a header the gateway owns (credentials, X-Auth-*); name another", t.Header)
		}
	case !queryNameRE.MatchString(t.Query):
		ps.add(p+".team.query", "%q: use letters, digits, '_', '.', '~', '-'", t.Query)
	}
}

// hasWildcard reports whether ServeMux pattern has a single-segment wildcard {name} in
// its path.
func hasWildcard(pattern, name string) bool {
	path := pattern
	if i := strings.IndexAny(path, " \t"); i >= 0 {
		path = strings.TrimLeft(path[i:], " \t")
	}
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[i:]
	} else {
		return false
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "{"+name+"}" {
			return true
		}
	}
	return false
}
