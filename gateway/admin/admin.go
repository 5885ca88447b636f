// Package admin serves the management API under auth_api.prefix (SPEC section 7): API
// keys for now; users and login arrive with the issuer. Callers are authenticated by the
// pipeline before these handlers run; the handlers decide what each caller may do.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/policy"
)

// keyStore is what the API needs of the key records.
type keyStore interface {
	Create(ctx context.Context, k apikey.Key, hash [32]byte) error
	Get(ctx context.Context, id string) (apikey.Key, error)
	Update(ctx context.Context, k apikey.Key) error
	Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error)
	List(ctx context.Context, q apikey.Query) (apikey.Page, error)
}

// activitySource reads a key's activity.
type activitySource interface {
	Recent(ctx context.Context, keyID string, n int) ([]activity.Event, error)
	Daily(ctx context.Context, keyID string, days int, now time.Time) ([]activity.Day, error)
}

// Options configure the API.
type Options struct {
	Prefix            string // auth_api.prefix, e.g. "/api/auth"
	RefreshTokenPath  string // auth_api.refresh_token_path
	KeyPrefix         string // api_keys.prefix
	AllowedExpiryDays []int
	DefaultExpiryDays int
	Hasher            apikey.Hasher
	Keys              keyStore
	Activity          activitySource
	Audit             *audit.Log
	// Invalidate drops every cached copy of tag on every replica (credcache.Invalidator.Publish).
	Invalidate func(ctx context.Context, tag string) error
	// KeyTag names the cache tag of a key id.
	KeyTag func(id string) string
	Now    func() time.Time
	Logger *slog.Logger
}

// API is the management API handler. It is safe for concurrent use.
type API struct {
	o   Options
	mux *http.ServeMux
}

// New returns the API with its routes registered, each with and without a trailing slash.
func New(o Options) *API {
	a := &API{o: o, mux: http.NewServeMux()}
	p := o.Prefix + "/api-keys"
	a.handle("POST "+p+"/", a.createKey)
	a.handle("GET "+p+"/", a.listKeys)
	a.handle("GET "+p+"/{id}/", a.getKey)
	a.handle("PATCH "+p+"/{id}/", a.editKey)
	a.handle("DELETE "+p+"/{id}/", a.revokeKey)
	a.handle("POST "+p+"/{id}/refresh/", a.refreshKey)
	a.handle("POST "+p+"/{id}/rotate/", a.rotateKey)
	a.handle("GET "+p+"/{id}/activity/", a.keyActivity)
	a.mux.HandleFunc("POST "+o.RefreshTokenPath, a.selfRefresh)
	return a
}

// handle registers pattern (which ends in "/") exactly, and without its trailing slash.
func (a *API) handle(pattern string, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern+"{$}", h)
	a.mux.HandleFunc(strings.TrimSuffix(pattern, "/"), h)
}

// Patterns lists every pattern the API serves, for the OpenAPI check.
func (a *API) Patterns() []string {
	p := a.o.Prefix + "/api-keys"
	return []string{"POST " + p + "/", "GET " + p + "/", "GET " + p + "/{id}/", "PATCH " + p + "/{id}/",
		"DELETE " + p + "/{id}/", "POST " + p + "/{id}/refresh/", "POST " + p + "/{id}/rotate/",
		"GET " + p + "/{id}/activity/", "POST " + a.o.RefreshTokenPath}
}

// ServeHTTP serves the API; unknown paths under the prefix are 404 not_found.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		status, allow := policy.Unmatched(h, r)
		code := "not_found"
		if status == http.StatusMethodNotAllowed {
			code = "method_not_allowed"
			w.Header().Set("Allow", allow)
		}
		reqinfo.From(r.Context()).Reject(w, &httperr.Error{Status: status, Code: code, Msg: "no such management call"})
		return
	}
	// Matched: ServeHTTP routes again, because only it sets r.PathValue.
	a.mux.ServeHTTP(w, r)
}

// caller is who is calling, from the pipeline's authentication.
type caller struct {
	subject string
	keyID   string
	scopes  []string
}

func callerOf(r *http.Request) caller {
	info := reqinfo.From(r.Context())
	return caller{subject: info.Subject, keyID: info.KeyID, scopes: info.Scopes}
}

// admin: "admin" (or "*") manages every key, admin keys and users.
func (c caller) admin() bool { return policy.Grants(c.scopes, "admin") }

// manager: "keys:manage" manages one's own personal keys.
func (c caller) manager() bool { return c.admin() || policy.Grants(c.scopes, "keys:manage") }

// Errors of the management API.
func badRequest(msg string, err error) error {
	return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: msg, Err: err}
}

func forbidden(msg string) error {
	return &httperr.Error{Status: http.StatusForbidden, Code: "insufficient_scope", Msg: msg,
		Header: http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope"`}}}
}

var errNotFound = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such key"}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httperr.Error
	if !errors.As(err, &he) {
		switch {
		case errors.Is(err, apikey.ErrNotFound):
			err = errNotFound
		case errors.Is(err, apikey.ErrInvalid):
			err = badRequest("invalid request: "+strings.TrimPrefix(err.Error(), "apikey: invalid argument: "), err)
		default:
			a.o.Logger.ErrorContext(r.Context(), "management call failed", slog.String("error", err.Error()))
			err = &httperr.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
				Msg: "the key store cannot be reached; retry shortly", Err: err, RetryAfter: time.Second}
		}
	}
	reqinfo.From(r.Context()).Reject(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body of at most 64 KiB, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(fmt.Sprintf("invalid JSON body: %v", err), err)
	}
	return nil
}

func clientIP(r *http.Request) string {
	if info := reqinfo.From(r.Context()); info != nil && info.ClientIP.IsValid() {
		return info.ClientIP.String()
	}
	return ""
}
