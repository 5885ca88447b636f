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
