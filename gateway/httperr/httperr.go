// Package httperr turns an error into a status and a JSON body; nothing else.
package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Error is an error that knows its response. Code and Msg go to the client; Err never does.
type Error struct {
	Status int    // HTTP status; 0 means 500
	Code   string // stable and machine-readable, e.g. "no_route"
	Msg    string // safe, human-readable; never holds a credential
	Err    error  // cause, for logs only

	// RetryAfter, when positive, is sent as Retry-After in whole seconds, rounded up.
	RetryAfter time.Duration
	// Header holds extra response headers (Allow, WWW-Authenticate, ...).
	Header http.Header
}

// Error returns the code and the cause, for logs.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code
	}
	return e.Code + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// body is the JSON every error answer carries.
type body struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Write sends err as JSON with requestID. An error that is not an *Error becomes a bare
// 500 "internal" whose cause is not shown. It returns the *Error it sent, so callers can
// record its code.
func Write(w http.ResponseWriter, requestID string, err error) *Error {
	he := &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err}
	if !errors.As(err, &he) || he.Status == 0 {
		he = &Error{Status: http.StatusInternalServerError, Code: he.Code, Msg: he.Msg, Err: err}
	}
	h := w.Header()
	for k, v := range he.Header {
		h[k] = v
	}
	if he.RetryAfter > 0 {
		secs := (he.RetryAfter + time.Second - 1) / time.Second
		h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(he.Status)
	_ = json.NewEncoder(w).Encode(body{Error: he.Code, Message: he.Msg, RequestID: requestID})
	return he
}
