package gateway

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
)

// checkTeam enforces a route's team source (routes[].team): the request must name one
// team, once, as a team ID (else 400 malformed_request), and the credential must act for
// it (else 403 team_not_allowed). The team passes upstream as X-Auth-Team. It runs after
// scopes: a credential that may not use the route at all learns nothing about teams.
func (rt *route) checkTeam(next http.Handler) http.Handler {
	ts := rt.cfg.Team
	if ts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		team, what, ok := requestedTeam(r, ts.Path, ts.Header, ts.Query)
		if !ok {
			info.Reject(w, &httperr.Error{Status: http.StatusBadRequest, Code: "malformed_request",
				Msg: "route " + rt.cfg.Name + " needs the request to name one team (" + what + ")"})
			return
		}
		if !info.AllTeams && !holds(info.Teams, team) {
			info.Reject(w, &httperr.Error{Status: http.StatusForbidden, Code: "team_not_allowed",
				Msg: "this credential does not act for team " + team})
			return
		}
		info.Team = team
		next.ServeHTTP(w, r)
	})
}

// requestedTeam is the team a request names in the route's source, and a description of
// the source for the refusal. ok is false when it names none, names one twice, or names
// something that cannot be a team ID.
func requestedTeam(r *http.Request, path, header, query string) (team, what string, ok bool) {
	var vals []string
	switch {
	case path != "":
		what = "path segment {" + path + "}"
		if v := r.PathValue(path); v != "" {
			vals = []string{v}
		}
	case header != "":
		what = "header " + header
		vals = r.Header.Values(header)
		if spelledOtherwise(r.Header, header) {
			// X_Team_Id beside X-Team-Id: a CGI-style upstream (PHP, WSGI, Rack) reads both
			// as HTTP_X_TEAM_ID and may believe the one the check did not see.
			return "", what, false
		}
	default:
		what = "query parameter " + query
		vals = r.URL.Query()[query]
	}
	if len(vals) != 1 || !user.ValidTeamID(vals[0]) {
		return "", what, false
	}
	return vals[0], what, true
}

// spelledOtherwise reports whether h has a header that is name in another CGI spelling
// ('_' for '-').
func spelledOtherwise(h http.Header, name string) bool {
	canon := http.CanonicalHeaderKey(name)
	for k := range h {
		if k != canon && len(k) == len(name) && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), strings.ReplaceAll(name, "_", "-")) {
			return true
		}
	}
	return false
}

func holds(teams []string, id string) bool {
	for _, t := range teams {
		if t == id {
			return true
		}
	}
	return false
}
