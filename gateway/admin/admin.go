// Package admin serves the management API under auth_api.prefix: API
// keys and users (login, refresh and logout are the issuer's, in package login). Callers are authenticated by the
// pipeline before these handlers run; the handlers decide what each caller may do.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/pwhash"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// keyStore is what the API needs of the key records.
type keyStore interface {
	Create(ctx context.Context, k apikey.Key, hash [32]byte) error
	Get(ctx context.Context, id string) (apikey.Key, error)
	Update(ctx context.Context, k apikey.Key) error
	Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error)
	MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (apikey.Key, error)
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
	// Users are the users of the built-in issuer; nil serves no /users/ calls.
	Users userStore
	// Teams are the teams of the users; nil (or nil Users) serves no /teams/ calls.
	Teams teamStore
	// Roles returns policy.roles of the configuration being served.
	Roles func() map[string][]string
	// MaxScopesPerKey returns api_keys.max_scopes_per_key; nil: no limit.
	MaxScopesPerKey func() int
	// PasswordParams hash passwords set through the API.
	PasswordParams user.Params
	// Passwords runs those hashes within the process's bound. Default: a pool of its own.
	Passwords *pwhash.Pool
	// Reauthenticate checks the current password (and TOTP code, when on) of a caller
	// changing their own password or TOTP; nil refuses such changes.
	Reauthenticate func(r *http.Request, u user.User, password, code string) error
	// OnUserChange is told after a user's role, state or password changed, so caches on
	// every replica and the user's refresh tokens follow.
	OnUserChange func(ctx context.Context, id string, ch UserChange) error
	// Hygiene returns api_keys.hygiene of the configuration being served; nil: no flags.
	Hygiene func() apikey.Hygiene
	// MaxExpiryDays returns api_keys.max_expiry_days; nil or 0: no bound.
	MaxExpiryDays func() int
	// Notify is told of life-cycle events (key.created, key.revoked, user.disabled) after
	// they happened; it must not block (webhook.Notifier.Emit queues). nil: none.
	Notify func(ctx context.Context, e Event)
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
	if o.Passwords == nil {
		o.Passwords = pwhash.New(pwhash.Options{})
	}
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
	if o.Users != nil {
		u := o.Prefix + "/users"
		a.handle("POST "+u+"/", a.createUser)
		a.handle("GET "+u+"/", a.listUsers)
		a.handle("GET "+u+"/{id}/", a.getUser)
		a.handle("PATCH "+u+"/{id}/", a.editUser)
		a.handle("DELETE "+u+"/{id}/", a.deleteUser)
	}
	if o.Users != nil && o.Teams != nil {
		t := o.Prefix + "/teams"
		a.handle("POST "+t+"/", a.createTeam)
		a.handle("GET "+t+"/", a.listTeams)
		a.handle("GET "+t+"/{id}/", a.getTeam)
		a.handle("PATCH "+t+"/{id}/", a.renameTeam)
		a.handle("DELETE "+t+"/{id}/", a.deleteTeam)
		a.handle("POST "+t+"/{id}/members/", a.addMember)
		a.handle("DELETE "+t+"/{id}/members/{user}/", a.removeMember)
	}
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
	out := []string{"POST " + p + "/", "GET " + p + "/", "GET " + p + "/{id}/", "PATCH " + p + "/{id}/",
		"DELETE " + p + "/{id}/", "POST " + p + "/{id}/refresh/", "POST " + p + "/{id}/rotate/",
		"GET " + p + "/{id}/activity/", "POST " + a.o.RefreshTokenPath}
	if a.o.Users != nil {
		u := a.o.Prefix + "/users"
		out = append(out, "POST "+u+"/", "GET "+u+"/", "GET "+u+"/{id}/", "PATCH "+u+"/{id}/", "DELETE "+u+"/{id}/")
	}
	if a.o.Users != nil && a.o.Teams != nil {
		t := a.o.Prefix + "/teams"
		out = append(out, "POST "+t+"/", "GET "+t+"/", "GET "+t+"/{id}/", "PATCH "+t+"/{id}/", "DELETE "+t+"/{id}/",
			"POST "+t+"/{id}/members/", "DELETE "+t+"/{id}/members/{user}/")
	}
	return out
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
	// teams and allTeams are the teams the calling credential acts for.
	teams    []string
	allTeams bool
}

func callerOf(r *http.Request) caller {
	info := reqinfo.From(r.Context())
	subject := info.Subject
	if info.Issuer != "" {
		// Another issuer's sub is not one of our users, even when it looks like one: an
		// IdP token with sub "usr_…" must not manage that user's keys or act as them.
		// Its keys are owned by "<iss>|<sub>".
		subject = info.Issuer + "|" + info.Subject
	}
	return caller{subject: subject, keyID: info.KeyID, scopes: info.Scopes, teams: info.Teams, allTeams: info.AllTeams}
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
	if ue := userError(err); ue != nil && !errors.As(err, &he) {
		err = ue
	}
	if le := OwnerLimitError(err); le != nil && !errors.As(err, &he) {
		err = le
	}
	if !errors.As(err, &he) {
		switch {
		case errors.Is(err, apikey.ErrNotFound):
			err = errNotFound
		case errors.Is(err, apikey.ErrInvalid):
			// "apikey: list: apikey: invalid argument: sort …": only what the caller sent wrong.
			_, what, _ := strings.Cut(err.Error(), apikey.ErrInvalid.Error()+": ")
			err = badRequest("invalid request: "+what, err)
		default:
			a.o.Logger.ErrorContext(r.Context(), "management call failed", slog.String("error", err.Error()))
			err = &httperr.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
				Msg: "the key store cannot be reached; retry shortly", Err: err, RetryAfter: time.Second}
		}
	}
	reqinfo.From(r.Context()).Reject(w, err)
}

func clientIP(r *http.Request) string {
	if info := reqinfo.From(r.Context()); info != nil && info.ClientIP.IsValid() {
		return info.ClientIP.String()
	}
	return ""
}
