package httperr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
)

func TestWrite(t *testing.T) {
	cause := errors.New("redis: dial tcp 10.0.0.7:6379: secret-detail")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
		wantHeader map[string]string
	}{
		{
			name:       "plain *Error",
			err:        &httperr.Error{Status: 404, Code: "no_route", Msg: "no route matches this request"},
			wantStatus: 404, wantCode: "no_route", wantMsg: "no route matches this request",
		},
		{
			name:       "wrapped *Error is found",
			err:        fmt.Errorf("auth: lookup: %w", &httperr.Error{Status: 401, Code: "invalid_api_key", Msg: "the API key is not valid", Err: cause}),
			wantStatus: 401, wantCode: "invalid_api_key", wantMsg: "the API key is not valid",
		},
		{
			name:       "other errors become a bare 500",
			err:        cause,
			wantStatus: 500, wantCode: "internal", wantMsg: "internal error",
		},
		{
			name:       "nil error is a 500",
			err:        nil,
			wantStatus: 500, wantCode: "internal", wantMsg: "internal error",
		},
		{
			name:       "status 0 means 500, code kept",
			err:        &httperr.Error{Code: "store_unavailable", Msg: "try again"},
			wantStatus: 500, wantCode: "store_unavailable", wantMsg: "try again",
		},
		{
			name: "extra headers",
			err: &httperr.Error{Status: 405, Code: "method_not_allowed", Msg: "m",
				Header: http.Header{"Allow": {"GET, HEAD"}}},
			wantStatus: 405, wantCode: "method_not_allowed", wantMsg: "m",
			wantHeader: map[string]string{"Allow": "GET, HEAD"},
		},
		{
			name:       "Retry-After rounds up",
			err:        &httperr.Error{Status: 429, Code: "rate_limited", Msg: "m", RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429, wantCode: "rate_limited", wantMsg: "m",
			wantHeader: map[string]string{"Retry-After": "2"},
		},
		{
			name:       "Retry-After whole second",
			err:        &httperr.Error{Status: 503, Code: "store_unavailable", Msg: "m", RetryAfter: time.Second},
			wantStatus: 503, wantCode: "store_unavailable", wantMsg: "m",
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name:       "Retry-After below a second is 1",
			err:        &httperr.Error{Status: 429, Code: "rate_limited", Msg: "m", RetryAfter: time.Nanosecond},
			wantStatus: 429, wantCode: "rate_limited", wantMsg: "m",
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name:       "no Retry-After when not set",
			err:        &httperr.Error{Status: 429, Code: "rate_limited", Msg: "m"},
			wantStatus: 429, wantCode: "rate_limited", wantMsg: "m",
			wantHeader: map[string]string{"Retry-After": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Length", "12345") // a stale length must not survive
			he := httperr.Write(rec, "req-1", tt.err)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if he == nil || he.Status != tt.wantStatus || he.Code != tt.wantCode {
				t.Errorf("returned %+v, want status %d code %s", he, tt.wantStatus, tt.wantCode)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := rec.Header().Get("Content-Length"); got != "" {
				t.Errorf("Content-Length = %q, want it removed", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", rec.Body, err)
			}
			want := map[string]string{"error": tt.wantCode, "message": tt.wantMsg, "request_id": "req-1"}
			if len(body) != len(want) {
				t.Errorf("body = %v, want exactly %v", body, want)
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("body[%q] = %q, want %q", k, body[k], v)
				}
			}
			if strings.Contains(rec.Body.String(), "secret-detail") {
				t.Errorf("body %q leaks the cause", rec.Body)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	cause := errors.New("boom")
	e := &httperr.Error{Code: "upstream_error", Err: cause}
	if got, want := e.Error(), "upstream_error: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, cause) {
		t.Errorf("errors.Is(e, cause) = false, want true")
	}
	if got, want := (&httperr.Error{Code: "no_route"}).Error(), "no_route"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
