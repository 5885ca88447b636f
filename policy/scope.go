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

// Set is a set of held scopes that answers Grants in constant time, whatever its size:
// a lookup of the scope itself, "*", "resource:*" and "*:action". The zero value holds
// nothing. It is safe for concurrent reads.
type Set map[string]struct{}

// NewSet returns the set of scopes.
func NewSet(scopes []string) Set {
	s := make(Set, len(scopes))
	for _, v := range scopes {
		s[v] = struct{}{}
	}
	return s
}

// Grants reports whether the set grants want, as the function Grants does for a slice.
func (s Set) Grants(want string) bool {
	if _, ok := s[want]; ok {
		return true
	}
	if _, ok := s["*"]; ok {
		return true
	}
	res, act, pair := strings.Cut(want, ":")
	if !pair {
		return false
	}
	if _, ok := s[res+":*"]; ok {
		return true
	}
	if res == "*" {
		return false
	}
	_, ok := s["*:"+act]
	return ok
}

// EffectiveScopes is what a personal key may do: the scopes both the key and its owner's
// role grant, without repeats, the key's first. A key without scopes has all of the
// role's (role itself is returned, not a copy). With wildcards on either side, a scope is
// kept when the other side grants it: key "reports:*" with role "reports:read" gives
// "reports:read", and key "reports:read" with role "*" gives "reports:read".
//
// It is linear in len(key)+len(role): each side is a Set, so a key with thousands of
// scopes costs thousands of map lookups, not millions of comparisons.
func EffectiveScopes(key, role []string) []string {
	if len(key) == 0 {
		return role
	}
	keySet, roleSet := NewSet(key), NewSet(role)
	seen := make(map[string]struct{}, len(key))
	var out []string
	add := func(s string) {
		if _, dup := seen[s]; !dup {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	for _, s := range key {
		if roleSet.Grants(s) {
			add(s)
		}
	}
	for _, s := range role {
		if keySet.Grants(s) {
			add(s)
		}
	}
	return out
}
