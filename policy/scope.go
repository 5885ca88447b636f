package policy

import "strings"

// Grants reports whether a credential holding scopes may act with scope want. A held scope
// grants want when it equals it, or is "*" (everything), or "resource:*" (every action on
// resource), or "*:action" (action on every resource). Wildcards in want are literal: a
// request for "reports:*" is granted only by "*" or "reports:*" itself.
func Grants(scopes []string, want string) bool {
	res, act, pair := strings.Cut(want, ":")
	for _, s := range scopes {
		switch {
		case s == want || s == "*":
			return true
		case !pair:
			continue
		case s == res+":*":
			return true
		case s == "*:"+act && res != "*":
			return true
		}
	}
	return false
}

// GrantsAll reports whether scopes grant every scope of want.
func GrantsAll(scopes, want []string) bool {
	for _, w := range want {
		if !Grants(scopes, w) {
			return false
		}
	}
	return true
}

// Satisfies reports whether a credential holding scopes may use a route that needs any
// one of anyOf (none: no requirement) and every one of allOf.
func Satisfies(scopes, anyOf, allOf []string) bool {
	okAny := len(anyOf) == 0
	for _, s := range anyOf {
		if Grants(scopes, s) {
			okAny = true
			break
		}
	}
	return okAny && GrantsAll(scopes, allOf)
}

// Needs describes what route name needs, as refusals and explanations say it:
// "route reports-read needs one of: reports:read".
func Needs(name string, anyOf, allOf []string) string {
	switch {
	case len(anyOf) == 0 && len(allOf) == 0:
		return "route " + name + " needs any valid credential"
	case len(allOf) == 0:
		return "route " + name + " needs one of: " + strings.Join(anyOf, ", ")
	case len(anyOf) == 0:
		return "route " + name + " needs all of: " + strings.Join(allOf, ", ")
	}
	return "route " + name + " needs all of: " + strings.Join(allOf, ", ") + "; and one of: " + strings.Join(anyOf, ", ")
}
