package jwtauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

// TestTeamClaim: the issuer's team_claim gives Claims.Teams (an array or a space
// separated string); a malformed claim refuses the token; no team_claim reads nothing.
func TestTeamClaim(t *testing.T) {
	v, _ := newVerifier(t, []jwtauth.IssuerConfig{
		{Issuer: "https://hs.example", Algorithms: []string{"HS256"}, HMACSecret: testSecret, TeamClaim: "groups"},
		{Issuer: "https://none.example", Algorithms: []string{"HS256"}, HMACSecret: testSecret},
	}, jwtauth.Options{})
	tests := []struct {
		iss     string
		mods    map[string]any
		want    []string
		wantErr error
	}{
		{"https://hs.example", map[string]any{"groups": []any{"acme", "globex"}}, []string{"acme", "globex"}, nil},
		{"https://hs.example", map[string]any{"groups": "acme globex"}, []string{"acme", "globex"}, nil},
		{"https://hs.example", nil, nil, nil},
		{"https://hs.example", map[string]any{"groups": 7}, nil, jwtauth.ErrClaims},
		{"https://hs.example", map[string]any{"groups": []any{"acme", 7}}, nil, jwtauth.ErrClaims},
		{"https://none.example", map[string]any{"groups": []any{"acme"}}, nil, nil},
	}
	for _, tt := range tests {
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims(tt.iss, tt.mods))
		got, err := v.Verify(context.Background(), tok)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s %v: got %v, want %v", tt.iss, tt.mods, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Teams, tt.want) {
			t.Errorf("%s %v: teams %v (%v), want %v", tt.iss, tt.mods, got.Teams, err, tt.want)
		}
	}
}
