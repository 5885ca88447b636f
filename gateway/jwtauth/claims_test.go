package jwtauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

func TestScopes(t *testing.T) {
	v, _ := newVerifier(t, []jwtauth.IssuerConfig{{
		Issuer: "https://hs.example", Algorithms: []string{"HS256"}, HMACSecret: testSecret,
	}}, jwtauth.Options{})
	tests := []struct {
		name    string
		mods    map[string]any
		want    []string
		wantErr error
	}{
		{"none", nil, nil, nil},
		{"scope string", map[string]any{"scope": " read:a  write:b "}, []string{"read:a", "write:b"}, nil},
		{"scope empty string", map[string]any{"scope": ""}, []string{}, nil},
		{"scp array", map[string]any{"scp": []any{"read:a", "write:b"}}, []string{"read:a", "write:b"}, nil},
		{"scp string", map[string]any{"scp": "read:a write:b"}, []string{"read:a", "write:b"}, nil},
		{"scopes array", map[string]any{"scopes": []any{"admin"}}, []string{"admin"}, nil},
		{"scopes string", map[string]any{"scopes": "x y"}, []string{"x", "y"}, nil},
		{"scope wins over scp", map[string]any{"scope": "a", "scp": []any{"b"}}, []string{"a"}, nil},
		{"scp wins over scopes", map[string]any{"scp": []any{"b"}, "scopes": []any{"c"}}, []string{"b"}, nil},
		{"scope array refused", map[string]any{"scope": []any{"a"}}, nil, jwtauth.ErrClaims},
		{"scope number refused", map[string]any{"scope": 1}, nil, jwtauth.ErrClaims},
		{"scp with a number", map[string]any{"scp": []any{"a", 1}}, nil, jwtauth.ErrClaims},
		{"scopes with an object", map[string]any{"scopes": []any{map[string]any{"a": 1}}}, nil, jwtauth.ErrClaims},
		{"scp with an empty entry", map[string]any{"scp": []any{""}}, nil, jwtauth.ErrClaims},
		{"scp with a space inside an entry", map[string]any{"scp": []any{"a b"}}, nil, jwtauth.ErrClaims},
		{"scp bool", map[string]any{"scp": true}, nil, jwtauth.ErrClaims},
		{"scopes null", map[string]any{"scopes": []any{nil}}, nil, jwtauth.ErrClaims},
		{"unused malformed claim still refused", map[string]any{"scope": "a", "scopes": []any{2}}, nil, jwtauth.ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("https://hs.example", tt.mods))
			got, err := v.Verify(context.Background(), tok)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(got.Scopes, tt.want) || (got.Scopes == nil) != (tt.want == nil) {
				t.Fatalf("got scopes %#v, want %#v", got.Scopes, tt.want)
			}
		})
	}
}

func TestClaimsOptional(t *testing.T) {
	v, _ := newVerifier(t, []jwtauth.IssuerConfig{{
		Issuer: "https://hs.example", Algorithms: []string{"HS256"}, HMACSecret: testSecret, RoleClaim: "https://example/role",
	}}, jwtauth.Options{})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims("https://hs.example",
		map[string]any{"iat": nil, "jti": nil, "aud": nil, "https://example/role": "viewer", "role": "admin"}))
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !got.IssuedAt.IsZero() || got.ID != "" || got.Audience != nil || got.Org != "" || got.Role != "viewer" {
		t.Fatalf("got iat=%v jti=%q aud=%q org=%q role=%q, want zero, \"\", nil, \"\", viewer",
			got.IssuedAt, got.ID, got.Audience, got.Org, got.Role)
	}
}
