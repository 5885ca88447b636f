// Package auth finds the caller's credential in a request and turns it into a Principal.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind says how a credential was presented.
type Kind int

// The kinds of credential.
const (
	None Kind = iota
	APIKey
	JWT
)

// String returns the auth label used in metrics and logs: "api_key", "jwt" or "none".
func (k Kind) String() string {
	switch k {
	case APIKey:
		return "api_key"
	case JWT:
		return "jwt"
	}
	return "none"
}

// Credential is what a request presented. Value is secret: never log it.
type Credential struct {
	Kind  Kind
	Value string
}

// ErrMalformed is returned by Extract for credentials that cannot be read unambiguously.
var ErrMalformed = errors.New("auth: malformed credentials")

// ErrEmpty is the ErrMalformed of a credential header without a value (`X-API-Key:`,
// `Authorization: Bearer`), most often an unset shell variable in a curl line.
var ErrEmpty = fmt.Errorf("%w: empty credential", ErrMalformed)

// Extract finds the request's credential:
//
//	X-API-Key: <key>                 API key
//	Authorization: Token <key>       API key
//	Authorization: Bearer <key>      API key, when the value has the API-key form
//	Authorization: Bearer <jwt>      JWT
//
// No credential is Credential{Kind: None}. Two different credentials, a repeated header,
// an unknown scheme or an empty value are ErrMalformed: guessing which one counts would let
// a request be authorised by one credential and attributed to another.
func Extract(h http.Header, keyPrefix string) (Credential, error) {
	var found Credential
	if vs := h["X-Api-Key"]; len(vs) > 0 {
		if len(vs) > 1 {
			return Credential{}, ErrMalformed
		}
		if strings.TrimSpace(vs[0]) == "" {
			return Credential{}, ErrEmpty
		}
		found = Credential{Kind: APIKey, Value: strings.TrimSpace(vs[0])}
	}
	vs := h["Authorization"]
	if len(vs) == 0 {
		return found, nil
	}
	if len(vs) > 1 {
		return Credential{}, ErrMalformed
	}
	scheme, value, _ := strings.Cut(strings.TrimSpace(vs[0]), " ")
	value = strings.TrimSpace(value)
	if value == "" {
		if scheme == "" || strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token") {
			return Credential{}, ErrEmpty
		}
		return Credential{}, ErrMalformed // a value without a scheme
	}
	if strings.ContainsAny(value, " \t") {
		return Credential{}, ErrMalformed
	}
	var c Credential
	switch {
	case strings.EqualFold(scheme, "Token"):
		c = Credential{Kind: APIKey, Value: value}
	case strings.EqualFold(scheme, "Bearer") && HasKeyForm(value, keyPrefix):
		c = Credential{Kind: APIKey, Value: value}
	case strings.EqualFold(scheme, "Bearer"):
		c = Credential{Kind: JWT, Value: value}
	default:
		return Credential{}, ErrMalformed
	}
	if found.Kind != None && found != c {
		return Credential{}, ErrMalformed
	}
	return c, nil
}

// HasKeyForm reports whether v starts like an API key of this gateway: "<prefix>_live_"
// or "<prefix>_test_". The full shape and checksum are checked by the key authenticator.
func HasKeyForm(v, prefix string) bool {
	rest, ok := strings.CutPrefix(v, prefix+"_")
	if !ok {
		return false
	}
	return strings.HasPrefix(rest, "live_") || strings.HasPrefix(rest, "test_")
}
