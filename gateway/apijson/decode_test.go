package apijson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
)

type createReq struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// TestReview10_DecodeBounds: a body past MaxBody is 413 request_too_large, whatever it
// holds; a malformed one within it is 400 invalid_request.
func TestReview10_DecodeBounds(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"ok", `{"name":"a","scopes":["x"]}`, 0, ""},
		{"too large", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, http.StatusRequestEntityTooLarge, "request_too_large"},
		{"too large and malformed", strings.Repeat(" ", MaxBody+1) + `{`, http.StatusRequestEntityTooLarge, "request_too_large"},
		{"unknown field", `{"nme":"a"}`, http.StatusBadRequest, "invalid_request"},
		{"trailing data", `{"name":"a"} {}`, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v createReq
			err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(tt.body)), &v)
			checkDecodeErr(t, err, tt.status, tt.code)
		})
	}
}

func checkDecodeErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("Decode: %v, want nil", err)
		}
		return
	}
	var he *httperr.Error
	if !errors.As(err, &he) || he.Status != status || he.Code != code {
		t.Fatalf("Decode: %v, want %d %s", err, status, code)
	}
}

// FuzzDecode: any body decodes or fails as a 400 invalid_request or 413
// request_too_large, and never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"a","scopes":["x"]}`, `{"name":1}`, `{}`, `[]`, `{"name":"\u0000"}`, `{"scopes":null} x`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v createReq
		err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), &v)
		if err == nil {
			return
		}
		var he *httperr.Error
		if !errors.As(err, &he) || (he.Code != "invalid_request" && he.Code != "request_too_large") {
			t.Fatalf("Decode: %v", err)
		}
	})
}

type nested struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	RateLimit *struct {
		Requests int `json:"requests"`
	} `json:"rate_limit"`
	Enabled bool       `json:"enabled"`
	Expires *time.Time `json:"expires_at"`
}

// TestDecodeMessages: a wrong type names the field by its JSON name and the JSON type it
// takes, never Go's types or names; other errors say what is wrong in plain words.
func TestDecodeMessages(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"scopes":"reports:read"}`, `field "scopes": expected an array of strings, got a string`},
		{`{"name":3}`, `field "name": expected a string, got a number`},
		{`{"rate_limit":{"requests":"ten"}}`, `field "rate_limit.requests": expected a whole number, got a string`},
		{`{"enabled":"yes"}`, `field "enabled": expected true or false, got a string`},
		{`{"rate_limit":[1]}`, `field "rate_limit": expected an object, got an array`},
		{`{"expires_at":5}`, `a time must be an RFC 3339 string, e.g. 2026-12-31T00:00:00Z`},
		{`{"expires_at":"tomorrow"}`, `a time must be an RFC 3339 string, e.g. 2026-12-31T00:00:00Z`},
		{`[]`, `expected an object, got an array`},
		{`{"nme":"a"}`, `unknown field "nme"`},
		{`{"name":`, `the body ends in the middle of the JSON value`},
		{``, `the body is empty: send a JSON object`},
		{`{"name" "a"}`, `not valid JSON (at byte 9)`},
	} {
		var v nested
		err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(tt.body)), &v)
		var he *httperr.Error
		if !errors.As(err, &he) || he.Code != "invalid_request" {
			t.Fatalf("%s: Decode = %v, want invalid_request", tt.body, err)
		}
		if want := "invalid JSON body: " + tt.want; he.Msg != want {
			t.Errorf("%s: message %q, want %q", tt.body, he.Msg, want)
		}
		for _, leak := range []string{"Go struct", "[]string", "nested", "int", "json:"} {
			if strings.Contains(he.Msg, leak) {
				t.Errorf("%s: message %q shows Go's %q", tt.body, he.Msg, leak)
			}
		}
	}
}
