package policy

import (
	"net/http"
	"net/url"
	"strings"
)

// PathValue returns the value of the single-segment wildcard {name} of ServeMux pattern
// in path, which the pattern matched and which is already clean (CleanPath): the segment
// of path at the wildcard's position. ok is false when the pattern has no such wildcard.
func PathValue(pattern, path, name string) (value string, ok bool) {
	pp := pattern
	if i := strings.IndexAny(pp, " \t"); i >= 0 {
		pp = strings.TrimLeft(pp[i:], " \t")
	}
	i := strings.IndexByte(pp, '/')
	if i < 0 {
		return "", false
	}
	pp = pp[i:]
	want := "{" + name + "}"
	for pos := 0; ; pos++ {
		seg, rest, more := strings.Cut(pp, "/")
		if seg == want {
			return pathSegment(path, pos)
		}
		if !more {
			return "", false
		}
		pp = rest
	}
}

// pathSegment is segment n of path split at '/' (segment 0 is what precedes the first
// '/', "" for an absolute path).
func pathSegment(path string, n int) (string, bool) {
	for range n {
		_, rest, more := strings.Cut(path, "/")
		if !more {
			return "", false
		}
		path = rest
	}
	seg, _, _ := strings.Cut(path, "/")
	return seg, true
}

// TeamSource is where a request names its team on a route that checks teams: exactly one
// of a path wildcard, a header or a query parameter (routes[].team).
type TeamSource struct {
	Path   string // a {wildcard} of every pattern of the route
	Header string
	Query  string
}

// Describe names the source, for messages: "path segment {team}", "header X-Team-Id".
func (ts TeamSource) Describe() string {
	switch {
	case ts.Path != "":
		return "path segment {" + ts.Path + "}"
	case ts.Header != "":
		return "header " + ts.Header
	}
	return "query parameter " + ts.Query
}

// Requested is the team a request names in ts: pathValue is the value of the path
// wildcard in the path as cleaned and matched (see PathValue), h the request's headers
// and rawQuery its query. ok is false when the request names no team, names one more than
// once (two headers, a header and its CGI spelling X_Team_Id, two query parameters), or
// names something that cannot be a team ID: the gateway answers 400 malformed_request.
func (ts TeamSource) Requested(pathValue string, h http.Header, rawQuery string) (team string, ok bool) {
	var vals []string
	switch {
	case ts.Path != "":
		if pathValue != "" {
			vals = []string{pathValue}
		}
	case ts.Header != "":
		vals = h.Values(ts.Header)
		if spelledOtherwise(h, ts.Header) {
			// X_Team_Id beside X-Team-Id: a CGI-style upstream (PHP, WSGI, Rack) reads both
			// as HTTP_X_TEAM_ID and may believe the one the check did not see.
			return "", false
		}
	default:
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return "", false // a query the gateway cannot read as the upstream would
		}
		vals = q[ts.Query]
	}
	if len(vals) != 1 || !ValidTeamID(vals[0]) {
		return "", false
	}
	return vals[0], true
}

// spelledOtherwise reports whether h has a header that is name in another CGI spelling
// ('_' for '-', any case) under another key.
func spelledOtherwise(h http.Header, name string) bool {
	canon := http.CanonicalHeaderKey(name)
	fold := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	for k := range h {
		if k != canon && len(k) == len(name) && fold(k) == fold(name) {
			return true
		}
	}
	return false
}

// ValidTeamID reports whether id may name a team: 1 to 64 bytes of ASCII letters,
// digits, '.', '_' and '-', starting with a letter or a digit. So an ID is always one
// clean path segment, a header value and a query value as it is, and never "*" (all
// teams), "." or "..".
func ValidTeamID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// HoldsTeam reports whether a credential acting for teams (or for every team, all) acts
// for team.
func HoldsTeam(teams []string, all bool, team string) bool {
	if all {
		return true
	}
	for _, t := range teams {
		if t == team {
			return true
		}
	}
	return false
}
