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
	Reason  string
}

// Explain decides for method and target (a path, or an absolute URL to match a host) with
// the scopes given plus those of role. An unknown role is an error.
func (e *Explainer) Explain(method, target string, scopes []string, role string) (Decision, error) {
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
	host, escaped := "", target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		host, escaped = u.Host, u.EscapedPath()
		if u.RawPath != "" {
			escaped = u.RawPath
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
	return d, nil
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
