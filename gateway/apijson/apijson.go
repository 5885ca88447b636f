// Package apijson reads and writes the JSON bodies of the gateway's own API (management,
// login): bounded reads that refuse unknown fields, and answers that are never cached.
package apijson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

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
		return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: "invalid JSON body: " + describe(err), Err: err}
	}
	return nil
}

// describe says what is wrong with a body in the API's terms: the field by its JSON name
// and the JSON type it takes, never Go's types or a value from the body.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("expected %s, got %s", jsonType(te.Type), article(te.Value))
		}
		return fmt.Sprintf("field %q: expected %s, got %s", te.Field, jsonType(te.Type), article(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)
	case errors.Is(err, io.EOF):
		return "the body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of the JSON value"
	case strings.HasPrefix(err.Error(), "Time.UnmarshalJSON") || errors.As(err, new(*time.ParseError)):
		return "a time must be an RFC 3339 string, e.g. 2026-12-31T00:00:00Z"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + name
	}
	return err.Error()
}

// jsonType names the JSON type that decodes into t.
func jsonType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() || t == reflect.TypeFor[*time.Time]() {
		return "a time (RFC 3339 string)"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + plural(jsonType(t.Elem()))
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}

// article puts "a"/"an" before encoding/json's name of a JSON value's type ("string",
// "number", "array", "object", "bool").
func article(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	case "bool":
		return "true or false"
	}
	if strings.HasPrefix(v, "number") {
		return "a number"
	}
	return "a " + v
}

// plural turns "a string" into "strings", "an object" into "objects".
func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "an "), "a ")
	switch {
	case s == "true or false":
		return "booleans"
	case strings.HasPrefix(s, "array of "):
		return "arrays of " + strings.TrimPrefix(s, "array of ")
	case strings.HasPrefix(s, "time "):
		return "times " + strings.TrimPrefix(s, "time ")
	}
	return s + "s"
}

// Nullable is a field of a request body that tells "absent" (leave it as it is) from
// null (clear it) and a value: a pointer field cannot, since encoding/json leaves it nil
// for both. Unknown fields inside the value are refused, as Decode refuses them.
type Nullable[T any] struct {
	Set  bool // the field was in the body, null included
	Null bool // the field was null
	V    T    // the value, when Set and not Null
}

// UnmarshalJSON records that the field was present, and whether it was null.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(bytes.TrimSpace(b)) == "null" {
		n.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&n.V)
}
