package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/httperr"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
)

// directKeys works on the configured Redis store itself, with the key layout and hashing
// of the gateway, for the first admin key and for break-glass access while the gateway is
// down. There is no caller: every key is manageable and admin keys can be created.
//
// Changes are announced on the gateways' invalidation channel (credcache's message
// format), so running gateways drop cached copies at once; if that publish fails the
// command says so, and gateways see the change within store.cache.ttl anyway.
type directKeys struct {
	cfg     *config.Config
	st      *store.Redis
	keys    *apikey.Store
	hasher  apikey.Hasher
	sink    *activity.RedisSink
	audit   *audit.Log
	now     func() time.Time
	warn    func(format string, args ...any)
	creator string // actor recorded in the audit log
}

func openDirect(ctx context.Context, path string, getenv func(string) string) (*directKeys, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Store.Type != "redis" {
		return nil, fmt.Errorf("keys: --config %s: store.type is %q; direct mode needs a redis store (a memory store lives only inside the gateway process)", path, cfg.Store.Type)
	}
	r := cfg.Store.Redis
	st, err := store.NewRedis(gateway.RedisOptions(r))
	if err != nil {
		return nil, fmt.Errorf("keys: store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("keys: --config %s: %w", path, err)
	}
	rdb := st.Client()
	// The audit log's counter is a throwaway: a CLI process has no metrics endpoint.
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_api_key_events_total"}, []string{"event"})
	return &directKeys{
		cfg:    cfg,
		st:     st,
		keys:   apikey.NewStore(rdb, r.KeyPrefix, time.Now),
		hasher: apikey.NewHasher(cfg.APIKeys.HashPepper.Value()),
		sink:   activity.NewRedisSink(rdb, r.KeyPrefix),
		audit:  audit.New(slog.New(slog.DiscardHandler), rdb, r.KeyPrefix, events, time.Now),
		now:    time.Now,
	}, nil
}

func (d *directKeys) close() error { return d.st.Close() }

// fail turns a store error into what the API would have answered.
func directErr(err error) error {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return err
	case admin.OwnerLimitError(err) != nil:
		return apiErrorOf(admin.OwnerLimitError(err))
	case errors.Is(err, apikey.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such key"}
	case errors.Is(err, apikey.ErrInvalid):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_request",
			Message: strings.TrimPrefix(err.Error(), "apikey: invalid argument: ")}
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: err.Error()}
}

func badArg(format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// view is k as the API shows it.
func (d *directKeys) view(k apikey.Key, plain string) ([]byte, error) {
	v := admin.View(k, d.now(), d.hygiene())
	v.Secret = plain
	return json.Marshal(v)
}

// hygiene is api_keys.hygiene of the configuration.
func (d *directKeys) hygiene() apikey.Hygiene {
	h := d.cfg.APIKeys.Hygiene
	return apikey.Hygiene{MaxAge: h.MaxAge.Duration(), UnusedAfter: h.UnusedAfter.Duration(),
		ExpiringWithin: h.ExpiringWithin.Duration()}
}

// maxExpiry applies api_keys.max_expiry_days, as the API does.
func (d *directKeys) maxExpiry(k apikey.Key) error {
	return apiErrorOf(admin.CheckMaxExpiry(k, d.cfg.APIKeys.MaxExpiryDays))
}

// apply validates f with the API's own rules (admin.KeyFields.Apply and
// api_keys.max_scopes_per_key). Direct mode is break-glass access, so any scope may be
// granted, but not more of them than the gateway allows; the hard end of a rotated key
// holds here too.
func (d *directKeys) apply(k *apikey.Key, f admin.KeyFields, now time.Time) error {
	var err error
	if f.Scopes != nil {
		err = admin.CheckScopeCount(*f.Scopes, d.cfg.APIKeys.MaxScopesPerKey)
	}
	if err == nil && f.ExpiresInDays != nil {
		err = admin.CheckExtendable(*k)
	}
	if err == nil {
		err = f.Apply(k, func(string) bool { return true }, d.cfg.APIKeys.AllowedExpiryDays, now)
	}
	return apiErrorOf(err)
}

// apiErrorOf is err as the CLI reports API answers: an *httperr.Error becomes an *apiError.
func apiErrorOf(err error) error {
	var he *httperr.Error
	if errors.As(err, &he) {
		return &apiError{Status: he.Status, Code: he.Code, Message: he.Msg}
	}
	return err
}

func (d *directKeys) create(ctx context.Context, req createBody) ([]byte, error) {
	now := d.now()
	by := strings.TrimSpace(req.CreatedBy)
	if by == "" {
		by = "cli"
	}
	d.creator = by
	k := apikey.Key{ID: apikey.NewID(), Type: apikey.Personal, Environment: apikey.Live, CreatedBy: by,
		MintedBy: apikey.MintedByCLI, CreatedAt: now}
	switch req.Type {
	case "", apikey.Personal:
	case apikey.Admin:
		k.Type = apikey.Admin
	default:
		return nil, badArg("type: personal or admin")
	}
	switch req.Environment {
	case "", apikey.Live:
	case apikey.Test:
		k.Environment = apikey.Test
	default:
		return nil, badArg("environment: live or test")
	}
	f := req.KeyFields
	if f.Team == nil && k.Type == apikey.Admin {
		all := apikey.AllTeams
		f.Team = &all // the CLI acts for every team, as an admin does
	}
	if err := directTeam(&k, f.Team); err != nil {
		return nil, err
	}
	if f.ExpiresInDays == nil {
		days := d.cfg.APIKeys.DefaultExpiryDays
		f.ExpiresInDays = &days
	}
	if err := d.apply(&k, f, now); err != nil {
		return nil, err
	}
	if err := d.maxExpiry(k); err != nil {
		return nil, err
	}
	plain, err := d.store(ctx, &k)
	if err != nil {
		return nil, err
	}
	d.record(ctx, audit.KeyCreated, k.ID, "created with authgate keys create --config")
	return d.view(k, plain)
}

// store generates the plaintext for k, stores k with its hash and returns the plaintext.
func (d *directKeys) store(ctx context.Context, k *apikey.Key) (string, error) {
	plain, err := apikey.Generate(d.cfg.APIKeys.Prefix, k.Environment)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	k.Start = plain[:apikey.StartLen]
	if err := d.keys.CreateLimited(ctx, *k, d.hasher.Hash(plain), d.cfg.APIKeys.MaxKeysPerOwner); err != nil {
		return "", directErr(err)
	}
	// As the API does: a creation no Redis replica confirmed may be lost in a failover, so
	// the key is revoked (best effort; its secret is never shown) and the command fails.
	if err := settle(ctx, d.st, d.cfg, d.warn, []string{gateway.KeysSlotKey}); err != nil {
		_, _ = d.keys.Revoke(context.WithoutCancel(ctx), k.ID, d.now())
		return "", err
	}
	return plain, nil
}

func (d *directKeys) list(ctx context.Context, q url.Values) ([]byte, error) {
	query := apikey.Query{Q: q.Get("q"), Name: q.Get("name"), CreatedBy: q.Get("created_by"), Environment: q.Get("environment"),
		Status: q.Get("status"), Team: q.Get("team"), Sort: q.Get("sort"), Order: q.Get("order"), Cursor: q.Get("cursor"),
		Hygiene: d.hygiene()}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{apikey.FlagStale, &query.Stale}, {apikey.FlagUnused, &query.Unused}, {apikey.FlagExpiring, &query.Expiring}} {
		if v := q.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, badArg("%s: true or false", f.name)
			}
			*f.dst = b
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, badArg("limit: a number")
		}
		query.Limit = n
	}
	page, err := d.keys.List(ctx, query)
	if err != nil {
		return nil, directErr(err)
	}
	out := struct {
		Keys       []json.RawMessage `json:"keys"`
		NextCursor *string           `json:"next_cursor"`
	}{Keys: []json.RawMessage{}}
	for _, k := range page.Keys {
		v, err := d.view(k, "")
		if err != nil {
			return nil, err
		}
		out.Keys = append(out.Keys, v)
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return json.Marshal(out)
}

func (d *directKeys) get(ctx context.Context, id string) ([]byte, error) {
	k, err := d.keys.Get(ctx, id)
	if err != nil {
		return nil, directErr(err)
	}
	return d.view(k, "")
}

// directTeam sets k's team in direct mode, which acts for every team: a team ID, "*"
// (admin keys only) or "" (none); nil keeps it.
func directTeam(k *apikey.Key, team *string) error {
	switch {
	case team == nil:
		return nil
	case *team == apikey.AllTeams && k.Type != apikey.Admin:
		return badArg("team: * (all teams) is for admin keys only")
	case *team != "" && *team != apikey.AllTeams && !user.ValidTeamID(*team):
		return badArg("team: %q is not a team ID", *team)
	}
	k.Team = *team
	return nil
}

func (d *directKeys) edit(ctx context.Context, id string, f admin.KeyFields) ([]byte, error) {
	k, err := d.keys.Get(ctx, id)
	if err != nil {
		return nil, directErr(err)
	}
	if err := d.apply(&k, f, d.now()); err != nil {
		return nil, err
	}
	if err := directTeam(&k, f.Team); err != nil {
		return nil, err
	}
	if f.ExpiresInDays != nil {
		if err := d.maxExpiry(k); err != nil {
			return nil, err
		}
	}
	if err := d.keys.Update(ctx, k); err != nil {
		return nil, directErr(err)
	}
	d.record(ctx, audit.KeyEdited, k.ID, "edited with authgate keys edit --config")
	if err := d.settled(ctx, k.ID); err != nil {
		return nil, err
	}
	return d.view(k, "")
}

func (d *directKeys) refresh(ctx context.Context, id string) ([]byte, error) {
	k, err := d.keys.Get(ctx, id)
	if err != nil {
		return nil, directErr(err)
	}
	if err := admin.CheckRefresh(k, d.now()); err != nil {
		return nil, apiErrorOf(err)
	}
	if err := d.maxExpiry(k); err != nil {
		return nil, err
	}
	k.ExpiresAt = admin.Expiry(d.now(), k.ExpiresInDays)
	if err := d.keys.Update(ctx, k); err != nil {
		return nil, directErr(err)
	}
	d.record(ctx, audit.KeyRefreshed, k.ID, "refreshed with authgate keys refresh --config")
	if err := d.settled(ctx, k.ID); err != nil {
		return nil, err
	}
	return d.view(k, "")
}

func (d *directKeys) rotate(ctx context.Context, id string, revokeOldAfter *string) ([]byte, error) {
	old, err := d.keys.Get(ctx, id)
	if err != nil {
		return nil, directErr(err)
	}
	var grace *time.Duration
	if revokeOldAfter != nil {
		g, err := time.ParseDuration(*revokeOldAfter)
		if err != nil || g < 0 {
			return nil, badArg("revoke_old_after: %q is not a duration", *revokeOldAfter)
		}
		grace = &g
	}
	now := d.now()
	if old.Status(now) == apikey.StatusRevoked {
		return nil, badArg("a revoked key cannot be rotated")
	}
	nk := admin.Successor(old, now)
	if err := d.maxExpiry(nk); err != nil {
		return nil, err
	}
	plain, err := d.store(ctx, &nk)
	if err != nil {
		return nil, err
	}
	if _, err := d.keys.MarkRotated(ctx, old.ID, nk.ID, admin.RotationEnd(now, grace)); err != nil {
		return nil, directErr(err)
	}
	if grace != nil {
		if *grace == 0 {
			if _, err := d.keys.Revoke(ctx, old.ID, now); err != nil {
				return nil, directErr(err)
			}
		}
	}
	d.record(ctx, audit.KeyRotated, old.ID, "new key: "+nk.ID+" (authgate keys rotate --config)")
	if err := d.settled(ctx, old.ID); err != nil {
		return nil, err
	}
	return d.view(nk, plain)
}

func (d *directKeys) revoke(ctx context.Context, id string) ([]byte, error) {
	k, err := d.keys.Revoke(ctx, id, d.now())
	if err != nil {
		return nil, directErr(err)
	}
	d.record(ctx, audit.KeyRevoked, k.ID, "revoked with authgate keys revoke --config")
	if err := d.settled(ctx, k.ID); err != nil {
		return nil, err
	}
	return d.view(k, "")
}

func (d *directKeys) activity(ctx context.Context, id string) ([]byte, error) {
	if _, err := d.keys.Get(ctx, id); err != nil {
		return nil, directErr(err)
	}
	recent, err := d.sink.Recent(ctx, id, activity.Keep)
	if err != nil {
		return nil, directErr(err)
	}
	daily, err := d.sink.Daily(ctx, id, 30, d.now())
	if err != nil {
		return nil, directErr(err)
	}
	return json.Marshal(map[string]any{"recent": recent, "daily": daily})
}

// settled makes a key change safe and visible: see settle.
func (d *directKeys) settled(ctx context.Context, ids ...string) error {
	invs := make([]invalidation, len(ids))
	for i, id := range ids {
		invs[i] = invalidation{credcache.DefaultChannel, auth.KeyTag(id)}
	}
	return settle(ctx, d.st, d.cfg, d.warn, []string{gateway.KeysSlotKey}, invs...)
}

// record writes the audit event to the store's audit stream; failures are ignored, the
// action has happened.
func (d *directKeys) record(ctx context.Context, event, keyID, detail string) {
	actor := "cli"
	if d.creator != "" {
		actor = d.creator
	}
	_ = d.audit.Record(ctx, audit.Event{Type: event, KeyID: keyID, Actor: actor, Detail: detail})
}
