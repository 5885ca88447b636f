package policy

import (
	"fmt"
	"testing"
)

func TestEffectiveScopes(t *testing.T) {
	member := []string{"reports:*", "dashboards:*", "goals:read", "keys:manage"}
	viewer := []string{"reports:read", "dashboards:read", "goals:read", "keys:manage"}
	tests := []struct {
		key, role []string
		want      string
	}{
		{nil, viewer, "[reports:read dashboards:read goals:read keys:manage]"},
		{[]string{"reports:read", "reports:generate"}, viewer, "[reports:read]"},
		{[]string{"reports:read", "reports:generate"}, member, "[reports:read reports:generate]"},
		{[]string{"reports:*"}, viewer, "[reports:read]"},
		{[]string{"reports:*"}, member, "[reports:*]"},
		{[]string{"*"}, viewer, "[reports:read dashboards:read goals:read keys:manage]"},
		{[]string{"reports:read"}, []string{"*"}, "[reports:read]"},
		{[]string{"*:read"}, member, "[goals:read]"},
		{[]string{"reports:read", "reports:read"}, member, "[reports:read]"},
		{[]string{"admin"}, viewer, "[]"},
		{[]string{"reports:read"}, nil, "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(EffectiveScopes(tt.key, tt.role)); got != tt.want {
			t.Errorf("EffectiveScopes(%v, %v) = %s, want %s", tt.key, tt.role, got, tt.want)
		}
	}
}

// TestSetGrantsIsGrants: Set.Grants answers exactly as Grants for every pair of held and
// wanted scopes drawn from the wildcard forms.
func TestSetGrantsIsGrants(t *testing.T) {
	forms := []string{"*", "admin", "reports:read", "reports:*", "*:read", "*:*", "dashboards:read", "reports:write", "*:write", ":read", "reports:", ""}
	for mask := range 1 << 6 {
		var held []string
		for i := range 6 {
			if mask&(1<<i) != 0 {
				held = append(held, forms[(i*5+mask)%len(forms)])
			}
		}
		set := NewSet(held)
		for _, want := range forms {
			if got, exp := set.Grants(want), Grants(held, want); got != exp {
				t.Errorf("held %v, want %q: Set.Grants = %v, Grants = %v", held, want, got, exp)
			}
		}
	}
}

// BenchmarkEffectiveScopes shows the cost grows linearly with the number of scopes (the
// review's key had 3,801): compare ns/op across the sizes. It was quadratic.
func BenchmarkEffectiveScopes(b *testing.B) {
	for _, n := range []int{16, 256, 4096} {
		key := make([]string, n)
		role := make([]string, n)
		for i := range n {
			key[i] = fmt.Sprintf("res%d:read", i)
			role[i] = fmt.Sprintf("res%d:*", i)
		}
		b.Run(fmt.Sprintf("scopes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = EffectiveScopes(key, role)
			}
		})
	}
}
