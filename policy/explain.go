package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Rule is what the explainer knows of one route.
type Rule struct {
	Name      string
	Patterns  []string
	Public    bool
	Scopes    []string // any one of
	ScopesAll []string // all of
	// Team is where the route's requests name their team; nil: no team check.
	Team *TeamSource
}

// Teams is what an explanation knows of teams: the credential's, and the request's
// headers (for a route whose team source is a header).
type Teams struct {
	Held   []string // the teams the credential acts for
	All    bool     // it acts for every team
	Header http.Header
}

// Explainer decides, as the gateway does, whether a request with given scopes may pass
// the route policy: path cleaning, matching and scopes. It does not judge what it cannot
// see: IP lists, rate limits and whether a credential is valid. It is immutable and safe
// for concurrent use.
type Explainer struct {
	router *Router
	rules  []Rule
	roles  map[string][]string
}

// NewExplainer compiles rules and the gateway's reserved patterns as the gateway does.
func NewExplainer(rules []Rule, reserved []string, roles map[string][]string) (*Explainer, error) {
	routes := make([]Route, len(rules))
	for i, r := range rules {
		routes[i] = Route{Name: r.Name, Patterns: r.Patterns}
	}
	router, err := NewRouter(routes, reserved)
	if err != nil {
		return nil, err
	}
	return &Explainer{router: router, rules: rules, roles: roles}, nil
}

// Decision is the outcome of one explanation.
type Decision struct {
	Allowed bool
	Status  int    // the gateway's answer when refused (0 when allowed)
	Code    string // its error code
	Path    string // the path as cleaned and matched ("" when it cannot be cleaned)
	Route   string // the matched route, "authgate" for the gateway's own paths, "" for none
	Pattern string // the pattern that matched
	Needs   string // what the route needs
	Scopes  []string
	// Team is the team the request names on a route that checks teams ("" otherwise),
	// and what X-Auth-Team would carry.
	Team   string
	Reason string
}

// Explain decides for method and target (a path, or an absolute URL to match a host) with
// the scopes given plus those of role, for a credential of no team. An unknown role is an
// error.
func (e *Explainer) Explain(method, target string, scopes []string, role string) (Decision, error) {
	return e.ExplainTeams(method, target, scopes, role, Teams{})
}

// ExplainTeams is Explain for a credential acting for teams t, which a route with a team
// source checks after scopes (target's query and t.Header give the team such a route
// reads from there).
func (e *Explainer) ExplainTeams(method, target string, scopes []string, role string, t Teams) (Decision, error) {
	held := slices.Clone(scopes)
	if role != "" {
		rs, ok := e.roles[role]
		if !ok {
			return Decision{}, fmt.Errorf("policy: unknown role %q", role)
		}
		for _, s := range rs {
			if !slices.Contains(held, s) {
				held = append(held, s)
			}
		}
	}
	d := Decision{Scopes: held}
	host, escaped, rawQuery := "", target, ""
	if u, err := url.Parse(target); err == nil {
		rawQuery = u.RawQuery
		if u.Host != "" {
			host, escaped = u.Host, u.EscapedPath()
			if u.RawPath != "" {
				escaped = u.RawPath
			}
		} else if i := strings.IndexByte(escaped, '?'); i >= 0 {
			escaped = escaped[:i]
		}
	}
	if !MethodOK(method) {
		return d.refuse(http.StatusBadRequest, "malformed_request", fmt.Sprintf("%q is not a method the gateway accepts (upper case letters only)", method)), nil
	}
	clean, err := CleanPath(escaped)
	if err != nil {
		return d.refuse(http.StatusBadRequest, "malformed_request", "the path cannot be cleaned unambiguously: "+err.Error()), nil
	}
	d.Path = clean
	r := &http.Request{Method: method, Host: host, URL: &url.URL{Path: clean}}
	m := e.router.Match(r)
	d.Pattern = m.Pattern
	switch {
	case m.Reserved != "":
		d.Route = "authgate"
		return d.refuse(0, "", "served by the gateway itself (auth API, key self-refresh, JWKS, forward-auth or console): those calls check their callers themselves"), nil
	case m.Status == http.StatusMethodNotAllowed:
		return d.refuse(m.Status, "method_not_allowed", "a route matches this path for "+m.Allow+" only"), nil
	case m.Route < 0:
		return d.refuse(http.StatusNotFound, "no_route", "no route matches"), nil
	}
	rule := e.rules[m.Route]
	d.Route = rule.Name
	d.Needs = Needs(rule.Name, rule.Scopes, rule.ScopesAll)
	switch {
	case rule.Public:
		d.Needs = "route " + rule.Name + " is public: no credential needed"
		d.Allowed, d.Reason = true, "public route"
	case Satisfies(held, rule.Scopes, rule.ScopesAll):
		d.Allowed, d.Reason = true, grantedBy(held, rule)
	default:
		return d.refuse(http.StatusForbidden, "insufficient_scope", missing(held, rule)), nil
	}
	if rule.Team != nil && !rule.Public {
		pathValue := ""
		if rule.Team.Path != "" {
			pathValue, _ = PathValue(m.Pattern, clean, rule.Team.Path)
		}
		team, ok := rule.Team.Requested(pathValue, t.Header, rawQuery)
		if !ok {
			return d.refuse(http.StatusBadRequest, "malformed_request", "the route needs the request to name one team, once ("+rule.Team.Describe()+")"), nil
		}
		d.Team = team
		if !HoldsTeam(t.Held, t.All, team) {
			return d.refuse(http.StatusForbidden, "team_not_allowed", "the request names team "+team+"; the credential acts for "+describeTeams(t)), nil
		}
		d.Reason += "; team " + team + ": the credential acts for " + describeTeams(t)
	}
	return d, nil
}

func describeTeams(t Teams) string {
	switch {
	case t.All:
		return "every team"
	case len(t.Held) == 0:
		return "no team"
	}
	return "team " + strings.Join(t.Held, ", ")
}

func (d Decision) refuse(status int, code, reason string) Decision {
	d.Allowed, d.Status, d.Code, d.Reason = false, status, code, reason
	return d
}

// grantedBy names, for each scope the route needs, one held scope that grants it.
func grantedBy(held []string, r Rule) string {
	var parts []string
	explain := func(want string) {
		for _, h := range held {
			if Grants([]string{h}, want) {
				parts = append(parts, h+" grants "+want)
				return
			}
		}
	}
	for _, w := range r.ScopesAll {
		explain(w)
	}
	for _, w := range r.Scopes {
		if Grants(held, w) {
			explain(w)
			break
		}
	}
	if len(parts) == 0 {
		return "the route needs no scope; any valid credential passes"
	}
	return strings.Join(parts, "; ")
}

// missing says what the held scopes lack.
func missing(held []string, r Rule) string {
	var lack []string
	for _, w := range r.ScopesAll {
		if !Grants(held, w) {
			lack = append(lack, w)
		}
	}
	if len(lack) > 0 {
		return "missing " + strings.Join(lack, ", ")
	}
	if len(held) == 0 {
		return "the credential has no scopes; it needs one of: " + strings.Join(r.Scopes, ", ")
	}
	return "none of " + strings.Join(held, ", ") + " grants one of: " + strings.Join(r.Scopes, ", ")
}
