package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/apijson"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// RateLimitJSON is a rate limit as the API shows it: "per" is a Go duration string.
type RateLimitJSON struct {
	Requests int    `json:"requests"`
	Per      string `json:"per,omitempty"`
}

// KeyView is a key as the API shows it (docs/openapi.yaml Key and KeyWithSecret): never
// the hash; the plaintext only from create and rotate. The CLI decodes answers into it and
// its direct mode encodes with it, so both speak one shape.
type KeyView struct {
	apikey.Key
	Status string `json:"status"`
	// Hygiene lists the key's hygiene flags (stale, unused, expiring); empty when none.
	Hygiene   []string       `json:"hygiene"`
	RateLimit *RateLimitJSON `json:"rate_limit"`
	Secret    string         `json:"key,omitempty"`
}

// View is k as the API shows it at now, its hygiene flags judged by h.
func View(k apikey.Key, now time.Time, h apikey.Hygiene) KeyView {
	v := KeyView{Key: k, Status: k.Status(now), Hygiene: h.Flags(k, now)}
	v.Key.Team = k.TeamOf() // an admin key made before teams shows "*", the team it acts for
	if k.Scopes == nil {
		v.Key.Scopes = []string{}
	}
	if k.AllowedIPs == nil {
		v.Key.AllowedIPs = []string{}
	}
	if k.RateLimit != nil {
		v.RateLimit = &RateLimitJSON{Requests: k.RateLimit.Requests, Per: k.RateLimit.PerString()}
	}
	return v
}

func (a *API) view(k apikey.Key) KeyView { return View(k, a.o.Now(), a.hygiene()) }

// hygiene is api_keys.hygiene of the configuration being served.
func (a *API) hygiene() apikey.Hygiene {
	if a.o.Hygiene == nil {
		return apikey.Hygiene{}
	}
	return a.o.Hygiene()
}

// CheckMaxExpiry is 400 invalid_request when k is not an admin key and lives longer than
// maxDays (api_keys.max_expiry_days; 0: no bound): "never" (expires_in_days 0) or more
// days. Shared with the CLI's direct mode.
func CheckMaxExpiry(k apikey.Key, maxDays int) error {
	if maxDays <= 0 || k.Type == apikey.Admin || (k.ExpiresInDays > 0 && k.ExpiresInDays <= maxDays) {
		return nil
	}
	life := fmt.Sprintf("%d days", k.ExpiresInDays)
	if k.ExpiresInDays == 0 {
		life = `"never" (expires_in_days 0)`
	}
	return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_request",
		Msg: fmt.Sprintf("expires_in_days: %s is refused: keys other than admin keys live at most %d days (api_keys.max_expiry_days); choose a shorter expires_in_days", life, maxDays)}
}

// maxExpiry applies api_keys.max_expiry_days to k.
func (a *API) maxExpiry(k apikey.Key) error {
	if a.o.MaxExpiryDays == nil {
		return nil
	}
	return CheckMaxExpiry(k, a.o.MaxExpiryDays())
}

// KeyFields are the settable fields of create and edit; nil means "not given". A
// rate_limit of {} clears the key's override (on edit, null does too: editRequest).
type KeyFields struct {
	Name          *string        `json:"name,omitempty"`
	Description   *string        `json:"description,omitempty"`
	Scopes        *[]string      `json:"scopes,omitempty"`
	ExpiresInDays *int           `json:"expires_in_days,omitempty"`
	AllowedIPs    *[]string      `json:"allowed_ips,omitempty"`
	RateLimit     *RateLimitJSON `json:"rate_limit,omitempty"`
	// Team is the team the key acts for (see teamFor); on edit, admins only.
	Team *string `json:"team,omitempty"`
}

// editRequest is the body of PATCH /keys/{id}: KeyFields, with a rate_limit of null
// told apart from an absent one. null clears the key's rate limit, as {} does (the older
// spelling, kept for clients that send it).
type editRequest struct {
	KeyFields
	RateLimit apijson.Nullable[RateLimitJSON] `json:"rate_limit"`
}

// fields is req as KeyFields: a rate_limit of null becomes {}, which clears it.
func (req editRequest) fields() KeyFields {
	f := req.KeyFields
	switch rl := req.RateLimit; {
	case rl.Set && rl.Null:
		f.RateLimit = &RateLimitJSON{}
	case rl.Set:
		f.RateLimit = &rl.V
	}
	return f
}

type createRequest struct {
	KeyFields
	Environment string `json:"environment"`
	Type        string `json:"type"`
}

// apply validates f against what c may grant and writes it onto k.
func (a *API) apply(c caller, k *apikey.Key, f KeyFields, now time.Time) error {
	return f.Apply(k, func(s string) bool { return policy.Grants(c.scopes, s) }, a.o.AllowedExpiryDays, now)
}

// Apply validates f and writes it onto k: the API's rules, shared with the CLI's
// direct mode. mayGrant reports whether the caller may give a key scope s (a key is
// never wider than its creator); expiries must be in allowedDays (0 = never). Errors
// are *httperr.Error: 400 invalid_request, or 403 insufficient_scope for a scope the
// caller may not grant.
func (f KeyFields) Apply(k *apikey.Key, mayGrant func(scope string) bool, allowedDays []int, now time.Time) error {
	if f.Name != nil {
		name := strings.TrimSpace(*f.Name)
		if name == "" || len(name) > 100 {
			return badRequest("name: 1 to 100 characters", nil)
		}
		k.Name = name
	}
	if f.Description != nil {
		if len(*f.Description) > 1000 {
			return badRequest("description: at most 1000 characters", nil)
		}
		k.Description = *f.Description
	}
	if f.Scopes != nil {
		for _, s := range *f.Scopes {
			if s == "" || len(s) > 128 || strings.ContainsAny(s, " \t\r\n,") {
				return badRequest(fmt.Sprintf("scopes: invalid scope %q", s), nil)
			}
			// No key wider than its creator.
			if !mayGrant(s) {
				return forbidden(fmt.Sprintf("you cannot grant scope %q: a key is never wider than its creator", s))
			}
		}
		k.Scopes = slices.Clone(*f.Scopes)
	}
	if f.ExpiresInDays != nil {
		d := *f.ExpiresInDays
		if !slices.Contains(allowedDays, d) {
			return badRequest(fmt.Sprintf("expires_in_days: %d is not one of %v", d, allowedDays), nil)
		}
		k.ExpiresInDays = d
		k.ExpiresAt = Expiry(now, d)
	}
	if f.AllowedIPs != nil {
		for _, s := range *f.AllowedIPs {
			if _, err := netip.ParsePrefix(s); err != nil {
				if _, err := netip.ParseAddr(s); err != nil {
					return badRequest(fmt.Sprintf("allowed_ips: %q is not an IP or CIDR", s), err)
				}
			}
		}
		k.AllowedIPs = slices.Clone(*f.AllowedIPs)
	}
	if f.RateLimit != nil {
		rl, err := parseRateLimit(*f.RateLimit)
		if err != nil {
			return err
		}
		k.RateLimit = rl
	}
	return nil
}

func parseRateLimit(r RateLimitJSON) (*apikey.RateLimit, error) {
	if r.Requests == 0 && r.Per == "" {
		return nil, nil // {} clears the override
	}
	if r.Requests <= 0 {
		return nil, badRequest("rate_limit.requests: must be > 0", nil)
	}
	per := time.Minute
	if r.Per != "" {
		d, err := time.ParseDuration(r.Per)
		if err != nil || d < time.Second {
			return nil, badRequest(fmt.Sprintf("rate_limit.per: %q is not a duration of at least 1s", r.Per), err)
		}
		per = d
	}
	return &apikey.RateLimit{Requests: r.Requests, Per: per}, nil
}

// adminOnlyFields refuses fields only admins may set: a key's own rate_limit overrides
// the route's and the method default, so letting a key's owner set it would let them
// lift every limit.
func (a *API) adminOnlyFields(c caller, f KeyFields) error {
	if f.RateLimit != nil && !c.admin() {
		return forbidden("only admins set a key's rate_limit")
	}
	return nil
}

// checkBounds applies the calling key's bounds (see keyBounds) to k.
func (a *API) checkBounds(r *http.Request, c caller, k apikey.Key) error {
	b, err := a.boundsOf(r, c)
	if err != nil {
		return err
	}
	return b.check(k)
}

// Expiry is now + days, or nil (never) for 0.
func Expiry(now time.Time, days int) *time.Time {
	if days == 0 {
		return nil
	}
	t := now.Add(time.Duration(days) * 24 * time.Hour)
	return &t
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.manager() {
		a.fail(w, r, forbidden("creating keys needs keys:manage or admin"))
		return
	}
	var req createRequest
	if err := apijson.Decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.adminOnlyFields(c, req.KeyFields); err != nil {
		a.fail(w, r, err)
		return
	}
	bounds, err := a.boundsOf(r, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	bounds.defaults(&req)
	if req.Name == nil {
		a.fail(w, r, badRequest("name is required", nil))
		return
	}
	minter, err := a.mintedBy(r, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.o.Now()
	k := apikey.Key{ID: apikey.NewID(), Type: apikey.Personal, Environment: apikey.Live, CreatedBy: c.subject,
		MintedBy: minter, CreatedAt: now}
	switch req.Type {
	case "", apikey.Personal:
	case apikey.Admin:
		if !c.admin() {
			a.fail(w, r, forbidden("only admins create admin keys"))
			return
		}
		k.Type = apikey.Admin
	default:
		a.fail(w, r, badRequest("type: personal or admin", nil))
		return
	}
	switch req.Environment {
	case "", apikey.Live:
	case apikey.Test:
		k.Environment = apikey.Test
	default:
		a.fail(w, r, badRequest("environment: live or test", nil))
		return
	}
	if k.Team, err = a.teamFor(r, c, k.Type, req.Team); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.ExpiresInDays == nil {
		d := a.o.DefaultExpiryDays
		req.ExpiresInDays = &d
	}
	if req.Scopes == nil && !user.IsID(c.subject) {
		// A key of a user without scopes follows the user's role (all of it, as it
		// changes). Callers that are not users (bootstrap, cli) have no role: their key
		// gets the caller's scopes as they are now.
		s := slices.Clone(c.scopes)
		req.Scopes = &s
	}
	if err := a.checkScopeCount(req.KeyFields); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.apply(c, &k, req.KeyFields, now); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := bounds.check(k); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.maxExpiry(k); err != nil {
		a.fail(w, r, err)
		return
	}
	plain, err := a.create(r.Context(), &k)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.audit(r, audit.KeyCreated, k.ID, c, "")
	a.notifyKey(r, EventKeyCreated, k, c)
	v := a.view(k)
	v.Secret = plain
	apijson.Write(w, http.StatusCreated, v)
}

// create generates the plaintext for k, stores k with its hash and returns the plaintext.
func (a *API) create(ctx context.Context, k *apikey.Key) (string, error) {
	plain, err := apikey.Generate(a.o.KeyPrefix, k.Environment)
	if err != nil {
		return "", fmt.Errorf("admin: %w", err)
	}
	k.Start = plain[:apikey.StartLen]
	if err := a.o.Keys.Create(ctx, *k, a.o.Hasher.Hash(plain)); err != nil {
		return "", fmt.Errorf("admin: create key: %w", err)
	}
	return plain, nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.manager() {
		a.fail(w, r, forbidden("listing keys needs keys:manage or admin"))
		return
	}
	qs := r.URL.Query()
	q := apikey.Query{Q: qs.Get("q"), Name: qs.Get("name"), CreatedBy: qs.Get("created_by"), MintedBy: qs.Get("minted_by"), Team: qs.Get("team"),
		Environment: qs.Get("environment"), Status: qs.Get("status"), Sort: qs.Get("sort"), Order: qs.Get("order"),
		Cursor: qs.Get("cursor"), Hygiene: a.hygiene()}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{apikey.FlagStale, &q.Stale}, {apikey.FlagUnused, &q.Unused}, {apikey.FlagExpiring, &q.Expiring}} {
		if v := qs.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				a.fail(w, r, badRequest(f.name+": true or false", err))
				return
			}
			*f.dst = b
		}
	}
	if l := qs.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			a.fail(w, r, badRequest("limit: a number", err))
			return
		}
		q.Limit = n
	}
	if !c.admin() {
		if q.CreatedBy != "" && q.CreatedBy != c.subject {
			a.fail(w, r, forbidden("only admins list other users' keys"))
			return
		}
		q.CreatedBy = c.subject
		if c.keyID != "" {
			// A key lists the keys it minted, not every key of its owner (issue 9, item 5).
			own, err := a.mintedBy(r, c)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			if q.MintedBy != "" && q.MintedBy != own {
				a.fail(w, r, forbidden("a key lists only the keys it minted"))
				return
			}
			q.MintedBy = own
		}
	}
	page, err := a.o.Keys.List(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views := make([]KeyView, 0, len(page.Keys))
	for _, k := range page.Keys {
		if !c.admin() && k.Type == apikey.Admin {
			continue
		}
		views = append(views, a.view(k))
	}
	var next *string
	if page.NextCursor != "" {
		next = &page.NextCursor
	}
	apijson.Write(w, http.StatusOK, map[string]any{"keys": views, "next_cursor": next})
}

// owned loads key id if c may manage it; others' keys are "not found", so their
// existence does not leak. Admins manage every key. A user's token manages the user's
// personal keys (created_by is the user). A key that is not an admin's manages itself and
// the personal keys it minted (minted_by "key:<its lineage>"), not their descendants and
// not the other keys of its owner: keys made by the bootstrap key, the CLI or one admin
// share a created_by, so created_by alone would let one tenant's key manage another's
// (issue 9, item 5). Records without minted_by (older than the field) belong to no key.
func (a *API) owned(r *http.Request, c caller, id string) (apikey.Key, error) {
	if !c.manager() {
		return apikey.Key{}, forbidden("managing keys needs keys:manage or admin")
	}
	k, err := a.o.Keys.Get(r.Context(), id)
	if err != nil {
		return apikey.Key{}, err
	}
	if c.admin() {
		return k, nil
	}
	if k.CreatedBy != c.subject || k.Type == apikey.Admin {
		return apikey.Key{}, errNotFound
	}
	if c.keyID == "" || k.ID == c.keyID {
		return k, nil
	}
	minter, err := a.mintedBy(r, c)
	if err != nil {
		return apikey.Key{}, err
	}
	if k.MintedBy == "" || k.MintedBy != minter {
		return apikey.Key{}, errNotFound
	}
	return k, nil
}

// mintedBy is the principal c records as minted_by on the keys it makes: "key:<lineage>"
// for a key (so a rotated key keeps managing what the key it replaced minted), else
// "user:<subject>" for a token.
func (a *API) mintedBy(r *http.Request, c caller) (string, error) {
	if c.keyID == "" {
		return apikey.MintedByUser(c.subject), nil
	}
	k, err := a.o.Keys.Get(r.Context(), c.keyID)
	if err != nil {
		return "", fmt.Errorf("admin: the calling key: %w", err)
	}
	return apikey.MintedByKey(k), nil
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.owned(r, callerOf(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	apijson.Write(w, http.StatusOK, a.view(k))
}

func (a *API) editKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	k, err := a.owned(r, c, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req editRequest
	if err := apijson.Decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	f := req.fields()
	if err := a.adminOnlyFields(c, f); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.checkScopeCount(f); err != nil {
		a.fail(w, r, err)
		return
	}
	if f.ExpiresInDays != nil {
		if err := CheckExtendable(k); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.apply(c, &k, f, a.o.Now()); err != nil {
		a.fail(w, r, err)
		return
	}
	if f.Team != nil {
		if !c.admin() {
			a.fail(w, r, forbidden("only admins move a key to another team"))
			return
		}
		if k.Team, err = a.teamFor(r, c, k.Type, f.Team); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.checkBounds(r, c, k); err != nil {
		a.fail(w, r, err)
		return
	}
	if f.ExpiresInDays != nil {
		if err := a.maxExpiry(k); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.o.Keys.Update(r.Context(), k); err != nil {
		a.fail(w, r, err)
		return
	}
	a.invalidate(r, k.ID)
	a.audit(r, audit.KeyEdited, k.ID, c, "fields: "+strings.Join(f.names(), ","))
	apijson.Write(w, http.StatusOK, a.view(k))
}

func (f KeyFields) names() []string {
	var out []string
	for name, set := range map[string]bool{"name": f.Name != nil, "description": f.Description != nil,
		"scopes": f.Scopes != nil, "expires_in_days": f.ExpiresInDays != nil, "allowed_ips": f.AllowedIPs != nil,
		"rate_limit": f.RateLimit != nil, "team": f.Team != nil} {
		if set {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	k, err := a.owned(r, c, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if k, err = a.o.Keys.Revoke(r.Context(), k.ID, a.o.Now()); err != nil {
		a.fail(w, r, err)
		return
	}
	a.invalidate(r, k.ID)
	a.audit(r, audit.KeyRevoked, k.ID, c, "")
	a.notifyKey(r, EventKeyRevoked, k, c)
	apijson.Write(w, http.StatusOK, a.view(k))
}

func (a *API) refreshKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	k, err := a.owned(r, c, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if k.ID != c.keyID {
		// Another key's new expiry must not outlive the calling key (a key refreshing
		// itself extends only itself).
		extended := k
		extended.ExpiresAt = Expiry(a.o.Now(), k.ExpiresInDays)
		if err := a.checkBounds(r, c, extended); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.refresh(w, r, c, k)
}

// selfRefresh is POST /api/refresh_token: a key, sent as Authorization: Token, extends
// itself by its original duration.
func (a *API) selfRefresh(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c.keyID == "" {
		a.fail(w, r, badRequest("send the key to refresh as Authorization: Token <key>", nil))
		return
	}
	k, err := a.o.Keys.Get(r.Context(), c.keyID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.refresh(w, r, caller{subject: "key:" + k.ID, scopes: c.scopes}, k)
}

// refresh extends k to now + its original duration.
func (a *API) refresh(w http.ResponseWriter, r *http.Request, c caller, k apikey.Key) {
	if err := CheckRefresh(k, a.o.Now()); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.maxExpiry(k); err != nil {
		a.fail(w, r, err)
		return
	}
	k.ExpiresAt = Expiry(a.o.Now(), k.ExpiresInDays)
	if err := a.o.Keys.Update(r.Context(), k); err != nil {
		a.fail(w, r, err)
		return
	}
	a.invalidate(r, k.ID)
	a.audit(r, audit.KeyRefreshed, k.ID, c, "")
	apijson.Write(w, http.StatusOK, a.view(k))
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	old, err := a.owned(r, c, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req struct {
		RevokeOldAfter *string `json:"revoke_old_after"`
	}
	if r.ContentLength != 0 {
		if err := apijson.Decode(r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	var grace *time.Duration
	if req.RevokeOldAfter != nil {
		d, err := time.ParseDuration(*req.RevokeOldAfter)
		if err != nil || d < 0 {
			a.fail(w, r, badRequest(fmt.Sprintf("revoke_old_after: %q is not a duration", *req.RevokeOldAfter), err))
			return
		}
		grace = &d
	}
	if old.Status(a.o.Now()) == apikey.StatusRevoked {
		a.fail(w, r, badRequest("a revoked key cannot be rotated", nil))
		return
	}
	now := a.o.Now()
	nk := Successor(old, now)
	// The new key is a copy with a fresh secret: a key may rotate only keys no wider than
	// itself, or rotating a wider sibling would hand it that sibling's power.
	if err := a.checkBounds(r, c, nk); err != nil {
		a.fail(w, r, err)
		return
	}
	if !policy.GrantsAll(c.scopes, nk.Scopes) {
		a.fail(w, r, forbidden("you cannot rotate a key with scopes you lack"))
		return
	}
	if err := a.maxExpiry(nk); err != nil {
		a.fail(w, r, err)
		return
	}
	plain, err := a.create(r.Context(), &nk)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// The old key records its successor and, with a grace period, a hard end that no
	// refresh or edit moves (issue 9, item 7); a grace of 0 revokes it now.
	if _, err := a.o.Keys.MarkRotated(r.Context(), old.ID, nk.ID, RotationEnd(now, grace)); err != nil {
		a.fail(w, r, err)
		return
	}
	if grace != nil {
		if *grace == 0 {
			revoked, err := a.o.Keys.Revoke(r.Context(), old.ID, now)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			a.notifyKey(r, EventKeyRevoked, revoked, c)
		}
		a.invalidate(r, old.ID)
	}
	a.audit(r, audit.KeyRotated, old.ID, c, "new key: "+nk.ID)
	a.notifyKey(r, EventKeyCreated, nk, c)
	v := a.view(nk)
	v.Secret = plain
	apijson.Write(w, http.StatusCreated, v)
}

func (a *API) keyActivity(w http.ResponseWriter, r *http.Request) {
	k, err := a.owned(r, callerOf(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	recent, err := a.o.Activity.Recent(r.Context(), k.ID, 1000)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	daily, err := a.o.Activity.Daily(r.Context(), k.ID, 30, a.o.Now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	apijson.Write(w, http.StatusOK, map[string]any{"recent": recent, "daily": daily})
}

// invalidate drops the key from every replica's cache. The change is already stored, so
// a failed publish is logged, not answered: replicas re-read within the cache TTL anyway.
func (a *API) invalidate(r *http.Request, id string) {
	if err := a.o.Invalidate(r.Context(), a.o.KeyTag(id)); err != nil {
		a.o.Logger.ErrorContext(r.Context(), "cache invalidation failed; replicas see the change within the cache TTL",
			"key_id", id, "error", err.Error())
	}
}

func (a *API) audit(r *http.Request, event, keyID string, c caller, detail string) {
	actor := c.subject
	if actor == "" && c.keyID != "" {
		actor = "key:" + c.keyID
	}
	_ = a.o.Audit.Record(r.Context(), audit.Event{Type: event, KeyID: keyID, Actor: actor,
		ClientIP: clientIP(r), Detail: detail})
}
