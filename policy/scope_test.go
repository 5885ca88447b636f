package policy

import "testing"

func TestGrants(t *testing.T) {
	tests := []struct {
		held []string
		want string
		ok   bool
	}{
		{[]string{"reports:read"}, "reports:read", true},
		{[]string{"reports:read"}, "reports:write", false},
		{[]string{"*"}, "anything:at_all", true},
		{[]string{"*"}, "admin", true},
		{[]string{"reports:*"}, "reports:generate", true},
		{[]string{"reports:*"}, "dashboards:read", false},
		{[]string{"*:read"}, "goals:read", true},
		{[]string{"*:read"}, "goals:write", false},
		{[]string{"*:read"}, "reports:*", false}, // a wildcard request needs a wildcard at least as wide
		{[]string{"reports:read"}, "reports:*", false},
		{[]string{"reports:*"}, "reports:*", true},
		{[]string{"admin"}, "admin", true},
		{[]string{"admin"}, "admin:keys", false}, // admin is an ordinary scope
		{[]string{"keys:manage"}, "admin", false},
		{nil, "reports:read", false},
		{[]string{"reports:read", "goals:read"}, "goals:read", true},
		{[]string{"report:*"}, "reports:read", false},
	}
	for _, tt := range tests {
		if got := Grants(tt.held, tt.want); got != tt.ok {
			t.Errorf("Grants(%v, %q) = %v, want %v", tt.held, tt.want, got, tt.ok)
		}
	}
	if !GrantsAll([]string{"reports:*", "goals:read"}, []string{"reports:read", "goals:read"}) {
		t.Error("GrantsAll: want true")
	}
	if GrantsAll([]string{"reports:*"}, []string{"reports:read", "goals:read"}) {
		t.Error("GrantsAll with one missing: want false")
	}
}
