package auth

import "sync/atomic"

// scopeMemo holds the effective scopes of one cached credential, computed once per
// cache entry for the role definition they were computed from. A configuration reload
// that changes policy.roles gives the role a new slice, so the next request recomputes;
// otherwise every request of a cached credential reuses the same slice (callers must
// not modify it). The zero value is empty and ready; it is safe for concurrent use.
type scopeMemo struct {
	p atomic.Pointer[memoed]
}

// memoed is one computed value and the role it was computed from.
type memoed struct {
	role   *string // &role[0], the identity of the role's slice; nil for an empty role
	n      int     // len(role)
	scopes []string
}

// get returns the memoised scopes for role, computing them with compute when there are
// none yet or role is not the slice they were computed from. Two requests that race on
// an empty memo may both compute; the result is the same.
func (m *scopeMemo) get(role []string, compute func() []string) []string {
	var id *string
	if len(role) > 0 {
		id = &role[0]
	}
	if v := m.p.Load(); v != nil && v.role == id && v.n == len(role) {
		return v.scopes
	}
	s := compute()
	m.p.Store(&memoed{role: id, n: len(role), scopes: s})
	return s
}
