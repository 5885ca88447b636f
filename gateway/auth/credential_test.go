package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/httperr"
)

const (
	liveKey = "sk_live_3Hq9aaaaaaaaaaaaaaaaaaaaZt01aB"
	testKey = "sk_test_3Hq9aaaaaaaaaaaaaaaaaaaaZt01aB"
	jwt     = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig"
)

var extractTests = []struct {
	name    string
	apiKey  []string // X-Api-Key values
	authz   []string // Authorization values
	want    auth.Credential
	wantErr bool
	empty   bool // the error is ErrEmpty, which has its own message
}{
	{name: "nothing", want: auth.Credential{}},
	{name: "X-API-Key", apiKey: []string{liveKey}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},
	{name: "X-API-Key trimmed", apiKey: []string{"  " + liveKey + " "}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},
	{name: "X-API-Key of any form is a key", apiKey: []string{"whatever"}, want: auth.Credential{Kind: auth.APIKey, Value: "whatever"}},
	{name: "Token scheme", authz: []string{"Token " + liveKey}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},
	{name: "Token scheme any case", authz: []string{"tOKEN " + testKey}, want: auth.Credential{Kind: auth.APIKey, Value: testKey}},
	{name: "Bearer with key form", authz: []string{"Bearer " + liveKey}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},
	{name: "bearer lowercase with key form", authz: []string{"bearer " + testKey}, want: auth.Credential{Kind: auth.APIKey, Value: testKey}},
	{name: "Bearer JWT", authz: []string{"Bearer " + jwt}, want: auth.Credential{Kind: auth.JWT, Value: jwt}},
	{name: "Bearer with another prefix is a JWT", authz: []string{"Bearer pk_live_abc"}, want: auth.Credential{Kind: auth.JWT, Value: "pk_live_abc"}},
	{name: "Bearer with a bad environment is a JWT", authz: []string{"Bearer sk_prod_abc"}, want: auth.Credential{Kind: auth.JWT, Value: "sk_prod_abc"}},
	{name: "extra spaces around value", authz: []string{"Bearer   " + jwt + "  "}, want: auth.Credential{Kind: auth.JWT, Value: jwt}},
	{name: "same key twice, two ways", apiKey: []string{liveKey}, authz: []string{"Bearer " + liveKey}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},
	{name: "same key twice, Token", apiKey: []string{liveKey}, authz: []string{"Token " + liveKey}, want: auth.Credential{Kind: auth.APIKey, Value: liveKey}},

	{name: "two different keys", apiKey: []string{liveKey}, authz: []string{"Token " + testKey}, wantErr: true},
	{name: "key and JWT", apiKey: []string{liveKey}, authz: []string{"Bearer " + jwt}, wantErr: true},
	{name: "same value but a key and a JWT", apiKey: []string{jwt}, authz: []string{"Bearer " + jwt}, wantErr: true},
	{name: "repeated X-API-Key", apiKey: []string{liveKey, liveKey}, wantErr: true},
	{name: "repeated Authorization", authz: []string{"Bearer " + jwt, "Bearer " + jwt}, wantErr: true},
	{name: "empty X-API-Key", apiKey: []string{" "}, wantErr: true, empty: true},
	{name: "empty Authorization", authz: []string{""}, wantErr: true, empty: true},
	{name: "scheme only", authz: []string{"Bearer"}, wantErr: true, empty: true},
	{name: "scheme and spaces", authz: []string{"Bearer   "}, wantErr: true, empty: true},
	{name: "Token only", authz: []string{"token"}, wantErr: true, empty: true},
	{name: "a value without a scheme", authz: []string{jwt}, wantErr: true},
	{name: "Basic", authz: []string{"Basic dXNlcjpwYXNz"}, wantErr: true},
	{name: "unknown scheme", authz: []string{"ApiKey " + liveKey}, wantErr: true},
	{name: "two values", authz: []string{"Bearer a b"}, wantErr: true},
	{name: "tab inside", authz: []string{"Bearer a\tb"}, wantErr: true},
	{name: "tab as separator", authz: []string{"Bearer\t" + jwt}, wantErr: true},
	{name: "bad Authorization beside a good key", apiKey: []string{liveKey}, authz: []string{"Basic x"}, wantErr: true},
}

func TestExtract(t *testing.T) {
	for _, tt := range extractTests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.apiKey != nil {
				h["X-Api-Key"] = tt.apiKey
			}
			if tt.authz != nil {
				h["Authorization"] = tt.authz
			}
			got, err := auth.Extract(h, "sk")
			if tt.wantErr {
				if !errors.Is(err, auth.ErrMalformed) {
					t.Fatalf("Extract = %+v, %v; want ErrMalformed", got, err)
				}
				if errors.Is(err, auth.ErrEmpty) != tt.empty {
					t.Fatalf("Extract error %v: ErrEmpty is %v, want %v", err, !tt.empty, tt.empty)
				}
				if got != (auth.Credential{}) {
					t.Fatalf("Extract returned %+v with an error, want the zero Credential", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Extract = %+v, %v; want %+v, nil", got, err, tt.want)
			}
		})
	}
}

func TestExtractUsesConfiguredPrefix(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer acme_live_abc"}}
	got, err := auth.Extract(h, "acme")
	if err != nil || got.Kind != auth.APIKey {
		t.Fatalf("Extract with prefix acme = %+v, %v; want an API key", got, err)
	}
	got, err = auth.Extract(h, "sk")
	if err != nil || got.Kind != auth.JWT {
		t.Fatalf("Extract with prefix sk = %+v, %v; want a JWT", got, err)
	}
}

func TestHasKeyForm(t *testing.T) {
	tests := []struct {
		v, prefix string
		want      bool
	}{
		{"sk_live_abc", "sk", true},
		{"sk_test_abc", "sk", true},
		{"sk_live_", "sk", true},
		{"sk_prod_abc", "sk", false},
		{"sk_liveabc", "sk", false},
		{"SK_live_abc", "sk", false},
		{"xsk_live_abc", "sk", false},
		{"sk_live_abc", "acme", false},
		{"acme_test_x", "acme", true},
		{"", "sk", false},
		{jwt, "sk", false},
	}
	for _, tt := range tests {
		if got := auth.HasKeyForm(tt.v, tt.prefix); got != tt.want {
			t.Errorf("HasKeyForm(%q, %q) = %v, want %v", tt.v, tt.prefix, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    auth.Kind
		want string
	}{{auth.None, "none"}, {auth.APIKey, "api_key"}, {auth.JWT, "jwt"}, {auth.Kind(42), "none"}}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", tt.k, got, tt.want)
		}
	}
}

func TestRefuserRefusesEverything(t *testing.T) {
	tests := []struct {
		c        auth.Credential
		wantCode string
	}{
		{auth.Credential{Kind: auth.APIKey, Value: liveKey}, "invalid_api_key"},
		{auth.Credential{Kind: auth.JWT, Value: jwt}, "invalid_token"},
	}
	for _, tt := range tests {
		p, err := auth.Refuser{}.Authenticate(context.Background(), tt.c)
		var he *httperr.Error
		if !errors.As(err, &he) {
			t.Fatalf("Authenticate(%s) = %+v, %v; want an *httperr.Error", tt.c.Kind, p, err)
		}
		if he.Status != http.StatusUnauthorized || he.Code != tt.wantCode {
			t.Errorf("Authenticate(%s) = %d %s, want 401 %s", tt.c.Kind, he.Status, he.Code, tt.wantCode)
		}
		if got := he.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("Authenticate(%s) WWW-Authenticate = %q, want an RFC 6750 invalid_token", tt.c.Kind, got)
		}
		if strings.Contains(he.Msg, tt.c.Value) || strings.Contains(he.Error(), tt.c.Value) {
			t.Errorf("Authenticate(%s) error leaks the credential", tt.c.Kind)
		}
		if p.Subject != "" || p.Scopes != nil {
			t.Errorf("Authenticate(%s) returned principal %+v with an error", tt.c.Kind, p)
		}
	}
}

func FuzzExtract(f *testing.F) {
	for _, tt := range extractTests {
		f.Add(strings.Join(tt.apiKey, "\n"), strings.Join(tt.authz, "\n"), tt.apiKey != nil, tt.authz != nil)
	}
	f.Fuzz(func(t *testing.T, apiKey, authz string, hasKey, hasAuthz bool) {
		h := http.Header{}
		if hasKey {
			h["X-Api-Key"] = strings.Split(apiKey, "\n")
		}
		if hasAuthz {
			h["Authorization"] = strings.Split(authz, "\n")
		}
		c, err := auth.Extract(h, "sk")
		if err != nil {
			if !errors.Is(err, auth.ErrMalformed) || c != (auth.Credential{}) {
				t.Fatalf("Extract(%q) = %+v, %v; want the zero Credential and ErrMalformed", h, c, err)
			}
			return
		}
		if c.Kind == auth.None {
			if c.Value != "" || hasKey || hasAuthz {
				t.Fatalf("Extract(%q) = %+v, nil; a present credential header was ignored", h, c)
			}
			return
		}
		if c.Value == "" || c.Value != strings.TrimSpace(c.Value) {
			t.Fatalf("Extract(%q) value %q is empty or untrimmed", h, c.Value)
		}
		if hasAuthz && strings.ContainsAny(c.Value, " \t") {
			t.Fatalf("Extract(%q) value %q holds blanks", h, c.Value)
		}
		if c.Kind == auth.JWT && auth.HasKeyForm(c.Value, "sk") {
			t.Fatalf("Extract(%q) = JWT for a value of API-key form", h)
		}
		// The credential came from the request, and every header present agrees on it.
		if hasKey && strings.TrimSpace(h["X-Api-Key"][0]) != c.Value {
			t.Fatalf("Extract(%q) = %q, which X-API-Key does not carry", h, c.Value)
		}
		if hasAuthz && !strings.Contains(h["Authorization"][0], c.Value) {
			t.Fatalf("Extract(%q) = %q, which Authorization does not carry", h, c.Value)
		}
	})
}
