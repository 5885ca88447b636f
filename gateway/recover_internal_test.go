package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/reqinfo"
)

// TestRecoverPanics: a panic in the pipeline becomes a logged 500 "internal" JSON answer
// that names nothing of the panic; http.ErrAbortHandler (how ReverseProxy aborts a
// response) is passed on untouched.
func TestRecoverPanics(t *testing.T) {
	s := &Server{logger: slog.New(slog.DiscardHandler)}
	serve := func(h http.HandlerFunc) (*httptest.ResponseRecorder, *reqinfo.Info) {
		r := httptest.NewRequest("GET", "/x", nil)
		ctx, info := reqinfo.New(r.Context())
		info.ID = "rid"
		rec := httptest.NewRecorder()
		s.recoverPanics(h).ServeHTTP(rec, r.WithContext(ctx))
		return rec, info
	}
	rec, info := serve(func(http.ResponseWriter, *http.Request) { panic("secret detail") })
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusInternalServerError || body["error"] != "internal" || body["request_id"] != "rid" || info.Reason != "internal" {
		t.Errorf("answer = %d %v (reason %q), want 500 internal with the request id", rec.Code, body, info.Reason)
	}
	if strings.Contains(rec.Body.String(), "secret detail") {
		t.Error("the panic value leaked into the answer")
	}

	defer func() {
		v := recover()
		if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
		}
	}()
	serve(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	t.Error("ErrAbortHandler was swallowed")
}
