// Package apijson reads and writes the JSON bodies of the gateway's own API (management,
// login): bounded reads that refuse unknown fields, and answers that are never cached.
package apijson

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/authgate/authgate/gateway/httperr"
)

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// Write sends v as JSON with status. Answers may hold credentials (a new key, tokens), so
// they are marked Cache-Control: no-store.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Decode reads a JSON body of at most MaxBody bytes into v, refusing unknown fields and
// trailing data. A longer body is 413 request_too_large, a body that stopped arriving
// (server.body_timeout) 408 request_timeout; other errors are 400 invalid_request.
// encoding/json's messages name a field or a character, never a value, so a password in
// the body is not echoed.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = fmt.Errorf("data after the JSON value")
	}
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return &httperr.Error{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Msg: fmt.Sprintf("the request body is larger than %d bytes", MaxBody), Err: err}
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return &httperr.Error{Status: http.StatusRequestTimeout, Code: "request_timeout",
			Msg: "the request body stopped arriving", Err: err}
	}
	if err != nil {
		return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: fmt.Sprintf("invalid JSON body: %v", err), Err: err}
	}
	return nil
}
