package apijson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
