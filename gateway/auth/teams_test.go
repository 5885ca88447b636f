package auth

import (
	"slices"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/jwtauth"
)

// TestClaimTeams: an external token's team claim gives its teams; entries that cannot be
// team IDs, "*" above all, are dropped: a claim never grants every team.
func TestClaimTeams(t *testing.T) {
	ct := &CachedToken{Claims: jwtauth.Claims{Teams: []string{"acme", "*", "a/b", "acme", "globex", ""}}}
	if got := ct.claimTeams(); !slices.Equal(got, []string{"acme", "globex"}) {
		t.Errorf("claimTeams = %v", got)
	}
}

// TestKeyTeams: what teams a key acts for, by its type, its team and its owner's.
func TestKeyTeams(t *testing.T) {
	roles := map[string][]string{"admin": {"*"}, "member": {"reports:read"}}
	a := &KeyAuthenticator{o: KeyAuthenticatorOptions{Roles: func() map[string][]string { return roles }}}
	tests := []struct {
		name  string
		key   apikey.Key
		owner *Owner
		teams []string
		all   bool
	}{
		{"personal key, owner in the team", apikey.Key{Type: apikey.Personal, Team: "a"}, &Owner{Role: "member", Teams: []string{"a"}}, []string{"a"}, false},
		{"personal key, owner left the team", apikey.Key{Type: apikey.Personal, Team: "a"}, &Owner{Role: "member", Teams: []string{"b"}}, nil, false},
		{"personal key, admin owner", apikey.Key{Type: apikey.Personal, Team: "a"}, &Owner{Role: "admin"}, []string{"a"}, false},
		{"personal key of no user", apikey.Key{Type: apikey.Personal, Team: "a"}, nil, []string{"a"}, false},
		{"personal key without team", apikey.Key{Type: apikey.Personal}, &Owner{Role: "member", Teams: []string{"a"}}, nil, false},
		{"personal key claiming all teams", apikey.Key{Type: apikey.Personal, Team: "*"}, nil, nil, false},
		{"admin key of all teams", apikey.Key{Type: apikey.Admin, Team: "*"}, nil, nil, true},
		{"admin key from before teams", apikey.Key{Type: apikey.Admin}, nil, nil, true},
		{"admin key of one team", apikey.Key{Type: apikey.Admin, Team: "b"}, &Owner{Role: "admin"}, []string{"b"}, false},
	}
	for _, tt := range tests {
		ck := &CachedKey{Key: tt.key, Owner: tt.owner}
		if tt.key.Team != "" && tt.key.Team != "*" {
			ck.teams = []string{tt.key.Team}
		}
		teams, all := a.keyTeams(ck)
		if !slices.Equal(teams, tt.teams) || all != tt.all {
			t.Errorf("%s: teams %v all %v, want %v %v", tt.name, teams, all, tt.teams, tt.all)
		}
	}
}
