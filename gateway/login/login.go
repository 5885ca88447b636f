// Package login serves the built-in issuer's HTTP calls: login with
// password and TOTP, refresh-token rotation, logout, TOTP enrolment, and the JWKS
// document. Tokens, keys and refresh families are package issuer's; users are package
// user's. These calls authenticate their callers themselves: login and refresh take no
// credential, logout and the MFA calls take the issuer's own access token.
package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/authgate/authgate/gateway/apijson"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/pwhash"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// The issuer.mfa modes.
const (
	MFAOptional          = "optional"
	MFARequiredForAdmins = "required_for_admins"
	MFARequired          = "required"
)

// Login results, the result label of authgate_logins_total.
const (
	ResultSuccess     = "success"
	ResultInvalid     = "invalid_login"
	ResultMFARequired = "mfa_required"
	ResultRateLimited = "rate_limited"
	ResultError       = "error"
)

// users is what the calls need of the user records.
type users interface {
	Get(ctx context.Context, id string) (user.User, error)
	ByEmail(ctx context.Context, email string) (user.User, error)
	Modify(ctx context.Context, id string, fn func(*user.User) error) (user.User, error)
}

// sessions verifies the issuer's own access tokens with every check a token passes
// anywhere (auth.TokenAuthenticator.Session).
type sessions interface {
	Session(ctx context.Context, token string) (jwtauth.Claims, error)
}

// Options configure the Handler.
type Options struct {
	Prefix     string // auth_api.prefix, e.g. "/api/auth"
	Issuer     string // issuer.name: the iss of minted tokens, and the TOTP issuer label
	Users      users
	Minter     *issuer.Minter
	Keys       *issuer.KeySet
	Refresh    issuer.RefreshStore
	RefreshTTL time.Duration
	TOTP       *issuer.TOTPChecker
	// MFA returns issuer.mfa of the configuration being served.
	MFA func() string
	// IsAdmin reports whether role grants admin (for mfa: required_for_admins).
	IsAdmin func(role string) bool
	// Tokens verifies the access tokens the calls take (logout, TOTP), with the same
	// checks as everywhere else a token is accepted. Required.
	Tokens sessions
	// RevokeAccess revokes an access token by jti until exp, on every replica.
	RevokeAccess func(ctx context.Context, jti string, exp time.Time) error
	// RevokeSession refuses every access token of the refresh family sid until exp, on
	// every replica (logout, refresh-token reuse).
	RevokeSession func(ctx context.Context, sid string, exp time.Time) error
	// Limiter and LoginLimit limit logins per client IP and per email (rate_limits.login).
	Limiter    ratelimit.Limiter
	LoginLimit func() ratelimit.Limit
	// GlobalLimit is rate_limits.login_global: all logins of this process together
	// (requests per Per, burst Requests); a zero Requests means no global limit.
	GlobalLimit func() ratelimit.Limit
	// Passwords runs every password hash, bounded for the whole process. Default: a
	// pool of its own with the default bounds.
	Passwords *pwhash.Pool
	// Leeway is jwt.leeway, for the issuer's own tokens.
	Leeway time.Duration
	// PasswordParams are the costs of the users' password hashes: a login for an unknown
	// email spends the same time on a dummy hash.
	PasswordParams user.Params
	// OnLogin is told the result of every login attempt (authgate_logins_total).
	OnLogin func(result string)
	Logger  *slog.Logger
}

// Handler serves the calls. It is safe for concurrent use.
type Handler struct {
	o      Options
	mux    *http.ServeMux
	dummy  user.Dummy
	global globalRate
}

// New returns the Handler with its calls registered, with and without a trailing slash.
func New(o Options) (*Handler, error) {
	d, err := user.NewDummy(o.PasswordParams)
	if err != nil {
		return nil, err
	}
	if o.OnLogin == nil {
		o.OnLogin = func(string) {}
	}
	if o.Passwords == nil {
		o.Passwords = pwhash.New(pwhash.Options{})
	}
	if o.GlobalLimit == nil {
		o.GlobalLimit = func() ratelimit.Limit { return ratelimit.Limit{} }
	}
	h := &Handler{o: o, mux: http.NewServeMux(), dummy: d}
	for _, c := range h.calls() {
		h.mux.HandleFunc(c.pattern, c.fn)
		if strings.HasSuffix(c.pattern, "/") {
			h.mux.HandleFunc(strings.TrimSuffix(c.pattern, "/"), c.fn)
		}
	}
	return h, nil
}

type call struct {
	pattern string
	fn      http.HandlerFunc
}

func (h *Handler) calls() []call {
	p := h.o.Prefix
	return []call{
		{"POST " + p + "/login/", h.login},
		{"POST " + p + "/token/refresh/", h.refresh},
		{"POST " + p + "/logout/", h.logout},
		{"POST " + p + "/mfa/totp/enroll/", h.enroll},
		{"POST " + p + "/mfa/totp/verify/", h.verifyTOTP},
		{"GET /.well-known/jwks.json", h.jwks},
	}
}

// Patterns lists every call the Handler serves (with trailing slash), for the OpenAPI check.
func (h *Handler) Patterns() []string {
	var out []string
	for _, c := range h.calls() {
		out = append(out, c.pattern)
	}
	return out
}

// Serves reports whether r is one of the Handler's calls (by path; a wrong method is
// still the Handler's, and gets 405).
func (h *Handler) Serves(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	if pattern != "" {
		return true
	}
	for _, c := range h.calls() {
		_, path, _ := strings.Cut(c.pattern, " ")
		if r.URL.Path == path || r.URL.Path == strings.TrimSuffix(path, "/") {
			return true
		}
	}
	return false
}

// ServeHTTP serves the calls.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hd, pattern := h.mux.Handler(r); pattern == "" {
		status, allow := policy.Unmatched(hd, r)
		code := "not_found"
		if status == http.StatusMethodNotAllowed {
			code = "method_not_allowed"
			w.Header().Set("Allow", allow)
		}
		reject(w, r, &httperr.Error{Status: status, Code: code, Msg: "this path does not accept " + r.Method})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

var (
	errInvalidLogin = &httperr.Error{Status: http.StatusUnauthorized, Code: "invalid_login",
		Msg: "the email or the password is wrong"}
	errInvalidToken = &httperr.Error{Status: http.StatusUnauthorized, Code: "invalid_token",
		Msg: "the token is not valid", Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}
)

func mfaRequired(msg string) error {
	return &httperr.Error{Status: http.StatusUnauthorized, Code: "mfa_required", Msg: msg,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="mfa_required"`}}}
}

func unavailable(err error) error {
	return &httperr.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Msg: "the user store cannot be reached; retry shortly", Err: err, RetryAfter: time.Second}
}

func reject(w http.ResponseWriter, r *http.Request, err error) {
	reqinfo.From(r.Context()).Reject(w, err)
}

// UserJSON is the user in a login answer.
type UserJSON struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	Organization string `json:"organization"`
	Role         string `json:"role"`
}

// LoginRequest is the body of POST /login/.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

// LoginAnswer is the answer of a successful login. With MFAEnrollmentRequired, the
// access token may only enrol TOTP and there is no refresh token: issuer.mfa requires
// MFA of this user, who has not set it up yet.
type LoginAnswer struct {
	Access                string   `json:"access"`
	Refresh               string   `json:"refresh,omitempty"`
	User                  UserJSON `json:"user"`
	MFAEnrollmentRequired bool     `json:"mfa_enrollment_required,omitempty"`
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := apijson.Decode(r, &req); err != nil {
		reject(w, r, err)
		return
	}
	email := user.NormalizeEmail(req.Email)
	if email == "" || req.Password == "" {
		reject(w, r, &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: "email and password are required"})
		return
	}
	if err := h.limit(r, email); err != nil {
		h.o.OnLogin(ResultRateLimited)
		reject(w, r, err)
		return
	}
	u, err := h.o.Users.ByEmail(r.Context(), email)
	switch {
	case errors.Is(err, user.ErrNotFound):
		// The same work as a wrong password, through the same bound, so timing does not
		// tell which emails exist.
		if _, err := h.o.Passwords.Verify(r.Context(), h.dummy.Encoded(), req.Password); errors.Is(err, pwhash.ErrBusy) {
			h.o.OnLogin(ResultRateLimited)
			reject(w, r, err)
			return
		}
		h.o.OnLogin(ResultInvalid)
		reject(w, r, errInvalidLogin)
		return
	case err != nil:
		h.o.OnLogin(ResultError)
		reject(w, r, unavailable(err))
		return
	}
	ok, err := h.o.Passwords.Verify(r.Context(), u.PasswordHash, req.Password)
	if errors.Is(err, pwhash.ErrBusy) {
		h.o.OnLogin(ResultRateLimited)
		reject(w, r, err)
		return
	}
	if err != nil || !ok || u.Disabled {
		// A disabled user and a wrong password answer alike: the answer must not tell an
		// attacker that the password was right.
		h.o.OnLogin(ResultInvalid)
		reject(w, r, errInvalidLogin)
		return
	}
	claims := issuer.AccessClaims{Subject: u.ID, Email: u.Email, Role: u.Role, Org: u.Organization, Teams: u.Teams, AMR: []string{"pwd"},
		SessionEpoch: u.SessionEpoch}
	switch {
	case u.MFAEnabled && u.TOTPSecret != "":
		if req.TOTP == "" {
			h.o.OnLogin(ResultMFARequired)
			reject(w, r, mfaRequired("a TOTP code is required for this account"))
			return
		}
		if err := h.o.TOTP.Check(r.Context(), u.ID, u.TOTPSecret, req.TOTP); err != nil {
			if !errors.Is(err, issuer.ErrTOTPInvalid) && !errors.Is(err, issuer.ErrTOTPReplayed) {
				h.o.OnLogin(ResultError)
				reject(w, r, unavailable(err))
				return
			}
			h.o.OnLogin(ResultMFARequired)
			reject(w, r, mfaRequired("the TOTP code is wrong or was used already"))
			return
		}
		claims.AMR = append(claims.AMR, "otp")
	case h.mfaRequiredOf(u):
		claims.EnrollOnly = true
	}
	ans := LoginAnswer{User: UserJSON{ID: u.ID, Email: u.Email, Organization: u.Organization, Role: u.Role},
		MFAEnrollmentRequired: claims.EnrollOnly}
	if !claims.EnrollOnly {
		sess, err := h.o.Refresh.IssueSession(r.Context(), u.ID, u.SessionEpoch, h.o.RefreshTTL)
		if err != nil {
			h.o.OnLogin(ResultError)
			reject(w, r, unavailable(err))
			return
		}
		ans.Refresh, claims.Session = sess.Token, sess.Family
	}
	if ans.Access, _, err = h.o.Minter.Mint(claims); err != nil {
		h.o.OnLogin(ResultError)
		reject(w, r, err)
		return
	}
	h.o.OnLogin(ResultSuccess)
	reqinfo.From(r.Context()).Subject = u.ID
	apijson.Write(w, http.StatusOK, ans)
}

// mfaRequiredOf reports whether issuer.mfa requires MFA of u.
func (h *Handler) mfaRequiredOf(u user.User) bool {
	switch h.o.MFA() {
	case MFARequired:
		return true
	case MFARequiredForAdmins:
		return h.o.IsAdmin(u.Role)
	}
	return false
}

// limit applies rate_limits.login per client IP and per email. The email is hashed: the
// limiter's keys (in Redis with mode: redis) need not hold addresses.
func (h *Handler) limit(r *http.Request, email string) error {
	if h.o.Limiter == nil {
		return nil
	}
	l := h.o.LoginLimit()
	sum := sha256.Sum256([]byte(email))
	var keys []string
	if ck := ratelimit.ClientKey(reqinfo.From(r.Context()).ClientIP); ck != "" {
		// Per client first, so a client over its limit does not use up the email's. An
		// IPv6 client counts per /64: one host usually holds a whole one.
		keys = append(keys, "login:ip:"+ck)
	}
	keys = append(keys, "login:email:"+hex.EncodeToString(sum[:16]))
	for _, k := range keys {
		res, err := h.o.Limiter.Allow(r.Context(), k, l)
		if err != nil {
			return unavailable(err)
		}
		if !res.Allowed {
			return &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
				Msg: "too many login attempts; retry later", RetryAfter: res.RetryAfter}
		}
	}
	// Last, so that a client over its own limit does not use up everyone's.
	if ok, retry := h.global.allow(h.o.GlobalLimit()); !ok {
		return &httperr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Msg: "too many login attempts on this gateway; retry later", RetryAfter: retry}
	}
	return nil
}

// globalRate is rate_limits.login_global: one token bucket for every login of the
// process, following the configured limit as it changes (reload).
type globalRate struct {
	mu  sync.Mutex
	cur ratelimit.Limit
	lim *rate.Limiter
}

// allow takes a token of l's bucket, or tells how long until one is there. A zero l
// allows everything.
func (g *globalRate) allow(l ratelimit.Limit) (bool, time.Duration) {
	if l.Requests <= 0 || l.Per <= 0 {
		return true, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	every := rate.Every(l.Per / time.Duration(l.Requests))
	switch {
	case g.lim == nil:
		g.lim = rate.NewLimiter(every, l.Requests)
	case g.cur != l:
		g.lim.SetLimit(every)
		g.lim.SetBurst(l.Requests)
	}
	g.cur = l
	res := g.lim.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d
	}
	return true, 0
}

// RefreshRequest is the body of POST /token/refresh/ (and optional for /logout/).
type RefreshRequest struct {
	Refresh string `json:"refresh"`
}

// RefreshAnswer is the answer of a refresh.
type RefreshAnswer struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	if err := apijson.Decode(r, &req); err != nil {
		reject(w, r, err)
		return
	}
	rot, err := h.o.Refresh.Rotate(r.Context(), req.Refresh, h.o.RefreshTTL)
	switch {
	case errors.Is(err, issuer.ErrReused):
		h.o.Logger.WarnContext(r.Context(), "refresh token reused: family revoked", slog.String("client_ip", clientIP(r)),
			slog.String("user_id", rot.UserID))
		// The family's access tokens too, at once on every replica: one of them may be
		// in the thief's hands.
		if rerr := h.revokeSession(r.Context(), rot.Family); rerr != nil {
			reject(w, r, unavailable(rerr))
			return
		}
		reject(w, r, tokenError("the refresh token was used already; its whole family is revoked now", err))
		return
	case errors.Is(err, issuer.ErrRefreshInvalid), errors.Is(err, issuer.ErrRefreshRevoked):
		reject(w, r, tokenError("the refresh token is not valid", err))
		return
	case err != nil:
		reject(w, r, unavailable(err))
		return
	}
	u, err := h.o.Users.Get(r.Context(), rot.UserID)
	switch {
	case errors.Is(err, user.ErrNotFound) || err == nil && u.Disabled:
		_ = h.o.Refresh.RevokeUser(r.Context(), rot.UserID)
		reject(w, r, tokenError("the refresh token is not valid", nil))
		return
	case err != nil:
		reject(w, r, unavailable(err))
		return
	}
	if rot.HasEpoch && rot.Epoch != u.SessionEpoch {
		// The user's sessions were ended (new password, TOTP removed, disabled) after this
		// family began — perhaps between the rotation above and the read of the user, before
		// the change got to revoke the family. Minting now would give a token of the new
		// epoch, which the change cannot end.
		if rerr := h.o.Refresh.RevokeSession(r.Context(), u.ID, rot.Family); rerr != nil && !errors.Is(rerr, issuer.ErrRefreshInvalid) {
			reject(w, r, unavailable(rerr))
			return
		}
		reject(w, r, tokenError("the refresh token is not valid", issuer.ErrRefreshRevoked))
		return
	}
	if h.mfaRequiredOf(u) && !u.MFAEnabled {
		// MFA became required of this user (issuer.mfa changed, or a promotion) after the
		// family began: it must not go on minting full tokens. A new login gives an
		// enrolment-only token.
		_ = h.o.Refresh.RevokeUser(r.Context(), u.ID)
		reject(w, r, mfaRequired("TOTP is now required for this account: log in again to set it up"))
		return
	}
	amr := []string{"pwd"}
	if u.MFAEnabled {
		// Turning TOTP on ends every refresh family (verifyTOTP), so a family of a user
		// with TOTP began with a login that passed it.
		amr = append(amr, "otp")
	}
	ans := RefreshAnswer{Refresh: rot.Token}
	if ans.Access, _, err = h.o.Minter.Mint(issuer.AccessClaims{Subject: u.ID, Email: u.Email, Role: u.Role,
		Org: u.Organization, Teams: u.Teams, AMR: amr, Session: rot.Family, SessionEpoch: u.SessionEpoch}); err != nil {
		reject(w, r, err)
		return
	}
	reqinfo.From(r.Context()).Subject = u.ID
	apijson.Write(w, http.StatusOK, ans)
}

func tokenError(msg string, err error) error {
	return &httperr.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: msg, Err: err,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}
}

// revokeSession refuses the access tokens of refresh family sid on every replica, until
// the newest one the family could have minted has expired.
func (h *Handler) revokeSession(ctx context.Context, sid string) error {
	if sid == "" {
		return nil
	}
	now := time.Now
	if h.o.Minter.Now != nil {
		now = h.o.Minter.Now
	}
	return h.o.RevokeSession(ctx, sid, now().Add(h.o.Minter.TTL+h.o.Leeway))
}

// session is what the calls use of a verified access token.
type session struct {
	Subject, ID, SID string
	ExpiresAt        time.Time
}

// bearer verifies the request's access token of this issuer with every check a token
// passes anywhere (revocation by jti and family, the user gone or disabled, the user's
// session epoch): an ended session cannot change the account.
func (h *Handler) bearer(r *http.Request) (session, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return session{}, &httperr.Error{Status: http.StatusUnauthorized, Code: "missing_credentials",
			Msg: "this call needs the access token as Authorization: Bearer", Header: http.Header{"Www-Authenticate": {`Bearer realm="authgate"`}}}
	}
	c, err := h.o.Tokens.Session(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return session{}, err
	}
	info := reqinfo.From(r.Context())
	info.Auth, info.Subject = "jwt", c.Subject
	return session{Subject: c.Subject, ID: c.ID, SID: auth.SessionID(c), ExpiresAt: c.ExpiresAt}, nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	c, err := h.bearer(r)
	if err != nil {
		reject(w, r, err)
		return
	}
	var req RefreshRequest
	if err := apijson.Decode(r, &req); err != nil && !errors.Is(err, io.EOF) {
		reject(w, r, err) // the body is optional; one that is there must be right
		return
	}
	// Kept until the token could no longer pass anyway: exp plus the leeway it is
	// accepted with.
	if err := h.o.RevokeAccess(r.Context(), c.ID, c.ExpiresAt.Add(h.o.Leeway)); err != nil {
		reject(w, r, unavailable(err))
		return
	}
	// The session's refresh family ends too: the one the access token names (sid), and
	// the one of a refresh token sent along. Only the caller's own: a stolen refresh token
	// of someone else is not a way to log them out. An unknown one changes nothing.
	if c.SID != "" {
		if err := h.o.Refresh.RevokeSession(r.Context(), c.Subject, c.SID); err != nil && !errors.Is(err, issuer.ErrRefreshInvalid) {
			reject(w, r, unavailable(err))
			return
		}
		// Every access token of the session, not only this one (those minted by earlier
		// refreshes).
		if err := h.revokeSession(r.Context(), c.SID); err != nil {
			reject(w, r, unavailable(err))
			return
		}
	}
	if req.Refresh != "" {
		if err := h.o.Refresh.RevokeFamily(r.Context(), c.Subject, req.Refresh); err != nil && !errors.Is(err, issuer.ErrRefreshInvalid) {
			reject(w, r, unavailable(err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// EnrollRequest is the body of POST /mfa/totp/enroll/: the current password proves that
// the holder of the access token is the user (a token alone must not bind an
// authenticator to the account).
type EnrollRequest struct {
	CurrentPassword string `json:"current_password"`
}

// EnrollAnswer is the answer of POST /mfa/totp/enroll/.
type EnrollAnswer struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

func (h *Handler) enroll(w http.ResponseWriter, r *http.Request) {
	c, err := h.bearer(r)
	if err != nil {
		reject(w, r, err)
		return
	}
	var req EnrollRequest
	if err := apijson.Decode(r, &req); err != nil && !errors.Is(err, io.EOF) {
		reject(w, r, err)
		return
	}
	u, err := h.currentUser(r, c.Subject)
	if err != nil {
		reject(w, r, err)
		return
	}
	if u.MFAEnabled {
		reject(w, r, errMFAOn)
		return
	}
	if err := h.Reauthenticate(r, u, req.CurrentPassword, ""); err != nil {
		reject(w, r, err)
		return
	}
	secret, url, err := issuer.NewTOTPSecret(h.o.Issuer, u.Email)
	if err != nil {
		reject(w, r, err)
		return
	}
	// Only the TOTP fields, on the record as it is at the write: a change an admin makes
	// meanwhile (disable, new password) must not be undone.
	_, err = h.o.Users.Modify(r.Context(), u.ID, func(cur *user.User) error {
		switch {
		case cur.Disabled:
			return tokenError("the access token's user is disabled or gone", nil)
		case cur.MFAEnabled:
			return errMFAOn
		}
		cur.TOTPSecret = secret // pending until verify proves the user's authenticator has it
		return nil
	})
	if err != nil {
		reject(w, r, modifyError(err))
		return
	}
	apijson.Write(w, http.StatusOK, EnrollAnswer{Secret: secret, OTPAuthURL: url})
}

// VerifyRequest is the body of POST /mfa/totp/verify/.
type VerifyRequest struct {
	Code string `json:"code"`
}

func (h *Handler) verifyTOTP(w http.ResponseWriter, r *http.Request) {
	c, err := h.bearer(r)
	if err != nil {
		reject(w, r, err)
		return
	}
	var req VerifyRequest
	if err := apijson.Decode(r, &req); err != nil {
		reject(w, r, err)
		return
	}
	u, err := h.currentUser(r, c.Subject)
	if err != nil {
		reject(w, r, err)
		return
	}
	if u.MFAEnabled || u.TOTPSecret == "" {
		reject(w, r, errNotPending)
		return
	}
	if err := h.o.TOTP.Check(r.Context(), u.ID, u.TOTPSecret, req.Code); err != nil {
		if errors.Is(err, issuer.ErrTOTPInvalid) || errors.Is(err, issuer.ErrTOTPReplayed) {
			reject(w, r, &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_totp", Msg: "the code is wrong or was used already", Err: err})
			return
		}
		reject(w, r, unavailable(err))
		return
	}
	checked := u.TOTPSecret
	_, err = h.o.Users.Modify(r.Context(), u.ID, func(cur *user.User) error {
		switch {
		case cur.Disabled:
			return tokenError("the access token's user is disabled or gone", nil)
		case cur.MFAEnabled || cur.TOTPSecret != checked:
			return errNotPending // enrolled again, or removed, meanwhile
		}
		cur.MFAEnabled = true
		return nil
	})
	if err != nil {
		reject(w, r, modifyError(err))
		return
	}
	// Every session from before TOTP ends: a refresh family of a user with TOTP then
	// always began with a login that passed it.
	if err := h.o.Refresh.RevokeUser(r.Context(), u.ID); err != nil {
		h.o.Logger.ErrorContext(r.Context(), "refresh tokens not revoked after TOTP was turned on", slog.String("error", err.Error()))
	}
	apijson.Write(w, http.StatusOK, map[string]bool{"mfa_enabled": true})
}

var (
	errMFAOn = &httperr.Error{Status: http.StatusConflict, Code: "mfa_already_enabled",
		Msg: "TOTP is on already; an admin can remove it (PATCH users/{id} mfa_enabled: false)"}
	errNotPending = &httperr.Error{Status: http.StatusConflict, Code: "mfa_not_pending", Msg: "call enroll first"}
)

// modifyError maps the errors of Users.Modify: the callback's own answers pass through.
func modifyError(err error) error {
	var he *httperr.Error
	switch {
	case errors.As(err, &he):
		return err
	case errors.Is(err, user.ErrNotFound):
		return tokenError("the access token's user is disabled or gone", err)
	}
	return unavailable(err)
}

// Re-authentication refusals: the access token is good, the proof that its holder is the
// user is missing or wrong.
var (
	errReauthRequired = &httperr.Error{Status: http.StatusForbidden, Code: "reauth_required",
		Msg: "this change needs current_password (and current_totp when TOTP is on)"}
	errReauthFailed = &httperr.Error{Status: http.StatusForbidden, Code: "reauth_failed",
		Msg: "the current password or TOTP code is wrong"}
)

// Reauthenticate checks that the caller knows u's current password, and, when u has TOTP
// on, a current code of it, before a change to how u signs in (TOTP enrolment, TOTP
// removal, a new password of one's own). The attempts count against rate_limits.login
// (per client IP, per email, and the global rate) and hash within the shared bound, like
// logins. Refusals: 403 reauth_required (missing), 403 reauth_failed (wrong), 429, 503.
func (h *Handler) Reauthenticate(r *http.Request, u user.User, password, code string) error {
	totpOn := u.MFAEnabled && u.TOTPSecret != ""
	if password == "" || totpOn && code == "" {
		return errReauthRequired
	}
	if err := h.limit(r, u.Email); err != nil {
		return err
	}
	ok, err := h.o.Passwords.Verify(r.Context(), u.PasswordHash, password)
	switch {
	case errors.Is(err, pwhash.ErrBusy):
		return err
	case err != nil || !ok:
		return errReauthFailed
	}
	if totpOn {
		if err := h.o.TOTP.Check(r.Context(), u.ID, u.TOTPSecret, code); err != nil {
			if errors.Is(err, issuer.ErrTOTPInvalid) || errors.Is(err, issuer.ErrTOTPReplayed) {
				return errReauthFailed
			}
			return unavailable(err)
		}
	}
	return nil
}

// currentUser loads the token's user, who must still exist and be enabled.
func (h *Handler) currentUser(r *http.Request, id string) (user.User, error) {
	u, err := h.o.Users.Get(r.Context(), id)
	switch {
	case errors.Is(err, user.ErrNotFound) || err == nil && u.Disabled:
		return u, tokenError("the access token's user is disabled or gone", err)
	case err != nil:
		return u, unavailable(err)
	}
	return u, nil
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(h.o.Keys.JWKS())
}

func clientIP(r *http.Request) string {
	if ip := reqinfo.From(r.Context()).ClientIP; ip.IsValid() {
		return ip.String()
	}
	return ""
}
