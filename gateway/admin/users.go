package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/apijson"
	"github.com/authgate/authgate/gateway/apikey"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// userStore is what the API needs of the users.
type userStore interface {
	Create(ctx context.Context, u user.User) error
	Get(ctx context.Context, id string) (user.User, error)
	ByEmail(ctx context.Context, email string) (user.User, error)
	Update(ctx context.Context, u user.User) error
	Modify(ctx context.Context, id string, fn func(*user.User) error) (user.User, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]user.User, error)
}

// UserView is a user as the API shows it (docs/openapi.yaml User): never the password
// hash or the TOTP secret (user.User does not encode them).
type UserView = user.User

// UserFields are the settable fields of user create and edit; nil means "not given".
type UserFields struct {
	Email        *string `json:"email,omitempty"`
	Password     *string `json:"password,omitempty"`
	Role         *string `json:"role,omitempty"`
	Organization *string `json:"organization,omitempty"`
	Disabled     *bool   `json:"disabled,omitempty"`
	// MFAEnabled may only be set to false: it removes the user's TOTP (a lost phone).
	MFAEnabled *bool `json:"mfa_enabled,omitempty"`

	passwordHash string // Password, hashed ahead by Prehash
}

// Prehash checks and hashes Password once, so that ApplyUser, run again by a store's
// compare-and-swap retries, does not spend argon2id on every attempt.
func (f UserFields) Prehash(params user.Params) (UserFields, error) {
	return f.PrehashWith(func(pw string) (string, error) { return user.HashPassword(pw, params) })
}

// PrehashWith is Prehash with the hash function: the API hashes within the process's
// bound of concurrent hashes (pwhash.Pool), whose refusal passes through as it is.
func (f UserFields) PrehashWith(hash func(pw string) (string, error)) (UserFields, error) {
	if f.Password == nil {
		return f, nil
	}
	h, err := hashPasswordWith(*f.Password, hash)
	f.passwordHash = h
	return f, err
}

func hashPassword(pw string, params user.Params) (string, error) {
	return hashPasswordWith(pw, func(pw string) (string, error) { return user.HashPassword(pw, params) })
}

func hashPasswordWith(pw string, hash func(string) (string, error)) (string, error) {
	if err := user.CheckPassword(pw); err != nil {
		// "user: invalid argument: password: shorter than …": the field is named once.
		return "", badRequest(strings.TrimPrefix(err.Error(), user.ErrInvalid.Error()+": "), err)
	}
	h, err := hash(pw)
	var he *httperr.Error
	switch {
	case errors.As(err, &he):
		return "", err
	case err != nil:
		return "", fmt.Errorf("admin: hash password: %w", err)
	}
	return h, nil
}

// prehash is Prehash within the process's bound of concurrent hashes.
func (a *API) prehash(r *http.Request, f UserFields) (UserFields, error) {
	return f.PrehashWith(func(pw string) (string, error) {
		return a.o.Passwords.Hash(r.Context(), pw, a.o.PasswordParams)
	})
}

// UserChange says what an edit changed, for OnUserChange.
type UserChange struct {
	// Access: role, disabled or deletion changed what the user's credentials may do;
	// their cached tokens and personal keys must be dropped on every replica.
	Access bool
	// Sessions: the user's refresh tokens must stop working (disabled, deleted, new
	// password, MFA removed).
	Sessions bool
}

// ApplyUser validates f and writes it onto u: the API's rules, shared with the CLI's
// direct mode. roles are policy.roles; params hash a new password. When the change ends
// the user's sessions, their SessionEpoch moves on, which refuses every access token
// minted before. Errors are *httperr.Error (400 invalid_request).
func (f UserFields) ApplyUser(u *user.User, roles map[string][]string, params user.Params) (ch UserChange, err error) {
	defer func() {
		if err == nil && ch.Sessions && !u.CreatedAt.IsZero() { // a new user has no sessions to end
			u.SessionEpoch++
		}
	}()
	if f.Email != nil {
		email := user.NormalizeEmail(*f.Email)
		if err := user.ValidateEmail(email); err != nil {
			return ch, badRequest("email: not a valid address", err)
		}
		u.Email = email
	}
	if f.Role != nil {
		if _, ok := roles[*f.Role]; !ok {
			return ch, badRequest(fmt.Sprintf("role: %q is not one of policy.roles (%s)", *f.Role, strings.Join(sortedKeys(roles), ", ")), nil)
		}
		if *f.Role != u.Role {
			ch.Access = true
		}
		u.Role = *f.Role
	}
	if f.Organization != nil {
		if len(*f.Organization) > 256 {
			return ch, badRequest("organization: at most 256 bytes", nil)
		}
		if *f.Organization != u.Organization {
			ch.Access = true // X-Auth-Org of the user's tokens follows at once
		}
		u.Organization = *f.Organization
	}
	if f.Disabled != nil {
		if *f.Disabled != u.Disabled {
			ch.Access = true
			ch.Sessions = ch.Sessions || *f.Disabled
		}
		u.Disabled = *f.Disabled
	}
	if f.MFAEnabled != nil {
		if *f.MFAEnabled {
			return ch, badRequest("mfa_enabled: only false (remove TOTP); users turn TOTP on themselves", nil)
		}
		if u.MFAEnabled || u.TOTPSecret != "" {
			ch.Sessions = true
		}
		u.MFAEnabled, u.TOTPSecret = false, ""
	}
	if f.Password != nil {
		h := f.passwordHash
		if h == "" {
			if h, err = hashPassword(*f.Password, params); err != nil {
				return ch, err
			}
		}
		u.PasswordHash = h
		ch.Sessions = true
	}
	return ch, nil
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var errNoUser = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such user"}

// requireAdmin refuses callers without admin: only admins manage users.
func requireAdmin(c caller) error {
	if !c.admin() {
		return forbidden("managing users needs admin")
	}
	return nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if err := requireAdmin(c); err != nil {
		a.fail(w, r, err)
		return
	}
	var f UserFields
	if err := apijson.Decode(r, &f); err != nil {
		a.fail(w, r, err)
		return
	}
	if f.Email == nil || f.Password == nil || f.Role == nil {
		a.fail(w, r, badRequest("email, password and role are required", nil))
		return
	}
	f, err := a.prehash(r, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u := user.User{ID: user.NewID()}
	if _, err := f.ApplyUser(&u, a.o.Roles(), a.o.PasswordParams); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.o.Users.Create(r.Context(), u); err != nil {
		a.fail(w, r, err)
		return
	}
	a.auditUser(r, audit.UserCreated, u.ID, c, "role: "+u.Role)
	created, err := a.o.Users.Get(r.Context(), u.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	apijson.Write(w, http.StatusCreated, created)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if err := requireAdmin(c); err != nil {
		a.fail(w, r, err)
		return
	}
	all, err := a.o.Users.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	role := r.URL.Query().Get("role")
	out := make([]UserView, 0, len(all))
	for _, u := range all {
		if (q == "" || strings.Contains(u.Email, q)) && (role == "" || u.Role == role) {
			out = append(out, u)
		}
	}
	apijson.Write(w, http.StatusOK, map[string]any{"users": out})
}

// userOf loads the user named by the path: an id, or "me" for the caller itself.
func (a *API) userOf(r *http.Request, c caller) (user.User, error) {
	id := r.PathValue("id")
	if id == "me" {
		if !user.IsID(c.subject) {
			return user.User{}, &httperr.Error{Status: http.StatusNotFound, Code: "not_found",
				Msg: "this credential does not belong to a user"}
		}
		id = c.subject
	} else if err := requireAdmin(c); err != nil {
		return user.User{}, err
	}
	if !user.IsID(id) {
		return user.User{}, errNoUser
	}
	return a.o.Users.Get(r.Context(), id)
}

// adminUserOf is userOf for the calls only admins make, "me" included.
func (a *API) adminUserOf(r *http.Request, c caller) (user.User, error) {
	if err := requireAdmin(c); err != nil {
		return user.User{}, err
	}
	return a.userOf(r, c)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.userOf(r, callerOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	apijson.Write(w, http.StatusOK, u)
}

func (a *API) editUser(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	u, err := a.adminUserOf(r, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body struct {
		UserFields
		// Re-authentication for a change to how one signs in oneself (own password,
		// own TOTP removal): a token or key alone must not be enough.
		CurrentPassword string `json:"current_password"`
		CurrentTOTP     string `json:"current_totp"`
	}
	if err := apijson.Decode(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	f := body.UserFields
	if u.ID == c.subject && ((f.Disabled != nil && *f.Disabled) || (f.Role != nil && !grantsAdmin(a.o.Roles()[*f.Role]))) {
		// An admin who locks themselves out may leave nobody able to manage the install.
		a.fail(w, r, badRequest("you cannot disable yourself or give up admin; ask another admin", nil))
		return
	}
	if u.ID == c.subject && (f.Password != nil || f.MFAEnabled != nil) {
		if err := a.reauthenticate(r, u, body.CurrentPassword, body.CurrentTOTP); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if f, err = a.prehash(r, f); err != nil {
		a.fail(w, r, err)
		return
	}
	var ch UserChange
	var wasDisabled bool
	// Applied to the record as it is at the write, so a concurrent change (the user
	// enrolling TOTP, another admin) is neither lost nor undone.
	u, err = a.o.Users.Modify(r.Context(), u.ID, func(cur *user.User) error {
		var err error
		wasDisabled = cur.Disabled
		ch, err = f.ApplyUser(cur, a.o.Roles(), a.o.PasswordParams)
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.userChanged(r, u.ID, ch)
	if u.Disabled && !wasDisabled {
		a.notifyUser(r, EventUserDisabled, u, c)
	}
	a.auditUser(r, audit.UserEdited, u.ID, c, "fields: "+strings.Join(f.Names(), ","))
	apijson.Write(w, http.StatusOK, u)
}

// reauthenticate asks the caller changing their own sign-in (password, TOTP) for their
// current password, and a current TOTP code when TOTP is on. Without the built-in issuer
// to check them, such a change is refused.
func (a *API) reauthenticate(r *http.Request, u user.User, password, code string) error {
	if a.o.Reauthenticate == nil {
		return &httperr.Error{Status: http.StatusForbidden, Code: "reauth_failed",
			Msg: "changing your own password or TOTP needs the built-in issuer (issuer.enabled)"}
	}
	return a.o.Reauthenticate(r, u, password, code)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	u, err := a.adminUserOf(r, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if u.ID == c.subject {
		a.fail(w, r, badRequest("you cannot delete yourself; ask another admin", nil))
		return
	}
	if err := a.o.Users.Delete(r.Context(), u.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	a.userChanged(r, u.ID, UserChange{Access: true, Sessions: true})
	a.auditUser(r, audit.UserDeleted, u.ID, c, "")
	if err := a.revokeKeysOf(r, c, u.ID); err != nil {
		// The user is gone, and a key whose owner is gone is refused anyway (auth looks
		// the owner up); the revocation makes that visible in the key's status.
		a.o.Logger.ErrorContext(r.Context(), "keys of a deleted user not all revoked; they are refused as ownerless",
			"user_id", u.ID, "error", err.Error())
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeKeysOf revokes every key of a deleted user, with its invalidation and audit event.
func (a *API) revokeKeysOf(r *http.Request, c caller, id string) error {
	return RevokeKeysOf(r.Context(), a.o.Keys, id, a.o.Now(), func(k apikey.Key) {
		a.invalidate(r, k.ID)
		a.audit(r, audit.KeyRevoked, k.ID, c, "owner deleted: "+id)
	})
}

// KeyRevoker is what RevokeKeysOf needs of the key store.
type KeyRevoker interface {
	List(ctx context.Context, q apikey.Query) (apikey.Page, error)
	Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error)
}

// RevokeKeysOf revokes, at now, every key that user id created and that is not revoked
// yet: personal and admin keys, and the keys their keys made (which carry their
// created_by), so that an admin's admin keys do not outlive the admin (issue 9, item 6).
// revoked is told of each key it revoked (to invalidate caches and audit). It stops at
// the first store error. Shared with the CLI's direct mode.
func RevokeKeysOf(ctx context.Context, keys KeyRevoker, id string, now time.Time, revoked func(apikey.Key)) error {
	q := apikey.Query{CreatedBy: id, Limit: apikey.MaxLimit}
	for {
		page, err := keys.List(ctx, q)
		if err != nil {
			return fmt.Errorf("admin: list keys of %s: %w", id, err)
		}
		for _, k := range page.Keys {
			if k.RevokedAt != nil {
				continue
			}
			rk, err := keys.Revoke(ctx, k.ID, now)
			if err != nil {
				return fmt.Errorf("admin: revoke key %s of %s: %w", k.ID, id, err)
			}
			revoked(rk)
		}
		if page.NextCursor == "" {
			return nil
		}
		q.Cursor = page.NextCursor
	}
}

// userChanged tells the rest of the gateway (caches on every replica, refresh tokens).
// The change is stored already; a failure here is logged: the cache TTL bounds it.
func (a *API) userChanged(r *http.Request, id string, ch UserChange) {
	if !ch.Access && !ch.Sessions {
		return
	}
	if a.o.OnUserChange == nil {
		return
	}
	if err := a.o.OnUserChange(r.Context(), id, ch); err != nil {
		a.o.Logger.ErrorContext(r.Context(), "user change not propagated; caches catch up within their TTL",
			"user_id", id, "error", err.Error())
	}
}

func grantsAdmin(scopes []string) bool { return policy.Grants(scopes, "admin") }

// Names lists the fields f sets, for audit lines (never their values).
func (f UserFields) Names() []string {
	var out []string
	for _, x := range []struct {
		set  bool
		name string
	}{{f.Email != nil, "email"}, {f.Password != nil, "password"}, {f.Role != nil, "role"},
		{f.Organization != nil, "organization"}, {f.Disabled != nil, "disabled"}, {f.MFAEnabled != nil, "mfa_enabled"}} {
		if x.set {
			out = append(out, x.name)
		}
	}
	return out
}

func (a *API) auditUser(r *http.Request, event, userID string, c caller, detail string) {
	actor := c.subject
	if actor == "" && c.keyID != "" {
		actor = "key:" + c.keyID
	}
	_ = a.o.Audit.Record(r.Context(), audit.Event{Type: event, UserID: userID, Actor: actor,
		ClientIP: clientIP(r), Detail: detail})
}

// userError maps the user store's errors onto answers.
func userError(err error) error {
	switch {
	case errors.Is(err, user.ErrNotFound):
		return errNoUser
	case errors.Is(err, user.ErrConflict):
		return &httperr.Error{Status: http.StatusConflict, Code: "conflict", Msg: "a user with this email exists", Err: err}
	case errors.Is(err, user.ErrInvalid):
		return badRequest("invalid user: "+strings.TrimPrefix(err.Error(), "user: invalid argument: "), err)
	}
	return nil
}
