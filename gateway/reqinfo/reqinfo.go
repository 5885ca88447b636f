// Package reqinfo carries what the pipeline learns about one request — its id, client IP,
// route, credential and rejection reason — from the middleware that learns it to the
// access log and metrics, which read it after the inner handlers return.
package reqinfo

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/ratelimit"
)

// Info is the per-request record. It is created once per request by the outermost
// middleware and written only by the goroutine serving that request.
type Info struct {
	ID       string     // X-Request-Id
	ClientIP netip.Addr // after trusted-proxy resolution
	// PeerTrusted is true when the socket peer is a trusted proxy, whose X-Forwarded-*
	// headers are then passed on.
	PeerTrusted bool
	Route       string // matched route name; "" when none matched
	Upstream    string // upstream name, once chosen
	Auth        string // "jwt", "api_key" or "" (none)
	Subject     string // user id, when authenticated
	// Issuer is the iss of an external issuer's token: its Subject is that issuer's, not
	// one of the gateway's users. "" for API keys and built-in tokens.
	Issuer string
	KeyID  string   // API key id, when authenticated by key
	Env    string   // "live" or "test"
	Scopes []string // effective scopes, when authenticated
	Org    string   // organisation of the user, when known
	// Teams and AllTeams are the teams the credential acts for (see auth.Principal).
	Teams    []string
	AllTeams bool
	// Team is X-Auth-Team: the team a team route's request named and the credential
	// holds, else the credential's team when it has exactly one; "" for none.
	Team string
	// OwnLimit is the credential's own rate limit (an API key's rate_limit); zero: none.
	OwnLimit ratelimit.Limit
	// KeepCredentials forwards Authorization and X-API-Key (route forward_credentials).
	KeepCredentials bool
	Reason          string // error code of a rejection, "" when forwarded
	// Decided is the original request a forward-auth check asked about (its method and
	// path), once read; the zero value for every other request. The access log and the
	// metrics show it rather than the check request's own.
	Decided struct{ Method, Path string }
	Status  int // status of the answer, as written

	// StrippedPrefix is the route's strip_prefix removed from the forwarded path, sent
	// on as X-Forwarded-Prefix; "" when none was.
	StrippedPrefix string
}

type infoKey struct{}

// New returns ctx carrying a fresh Info, and that Info.
func New(ctx context.Context) (context.Context, *Info) {
	i := &Info{}
	return context.WithValue(ctx, infoKey{}, i), i
}

// From returns the request's Info, or nil when the request has none. Methods of a nil
// *Info are safe to call.
func From(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}

// Reject writes err as the JSON error answer and records its code as the rejection reason.
func (i *Info) Reject(w http.ResponseWriter, err error) {
	id := ""
	if i != nil {
		id = i.ID
	}
	he := httperr.Write(w, id, err)
	if i != nil {
		i.Reason = he.Code
	}
}
