package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
)

// directUsers works on the users in the configured Redis store itself, with the rules of
// the management API (admin.UserFields.ApplyUser), for break-glass access while the
// gateway is down. There is no caller: the API's guards against an admin locking
// themselves out do not apply.
//
// Changes to a user's access are announced on both invalidation channels, as the
// gateway's own user changes are, so running gateways drop the user's cached keys and
// tokens at once; a user whose sessions must end also loses their refresh tokens.
type directUsers struct {
	cfg     *config.Config
	st      *store.Redis
	users   *user.Store
	keys    *apikey.Store
	refresh *issuer.RedisRefreshStore
	audit   *audit.Log
	params  user.Params
	warn    func(format string, args ...any)
}

func openDirectUsers(ctx context.Context, path string, getenv func(string) string) (*directUsers, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Store.Type != "redis" {
		return nil, fmt.Errorf("users: --config %s: store.type is %q; direct mode needs a redis store (a memory store lives only inside the gateway process)", path, cfg.Store.Type)
	}
	r := cfg.Store.Redis
	st, err := store.NewRedis(gateway.RedisOptions(r))
	if err != nil {
		return nil, fmt.Errorf("users: store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("users: --config %s: %w", path, err)
	}
	rdb := st.Client()
	// The audit log's counter is a throwaway: a CLI process has no metrics endpoint.
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_api_key_events_total"}, []string{"event"})
	return &directUsers{
		cfg:     cfg,
		st:      st,
		users:   user.NewStore(rdb, r.KeyPrefix, time.Now),
		keys:    apikey.NewStore(rdb, r.KeyPrefix, time.Now),
		refresh: issuer.NewRedisRefreshStore(rdb, r.KeyPrefix, time.Now),
		audit:   audit.New(slog.New(slog.DiscardHandler), rdb, r.KeyPrefix, events, time.Now),
		params:  user.DefaultParams, // the gateway's: it verifies whatever the hash says
		warn:    func(string, ...any) {},
	}, nil
}

func (d *directUsers) close() error { return d.st.Close() }

// userErr turns a store or validation error into what the API would have answered.
func userErr(err error) error {
	var he *httperr.Error
	switch {
	case errors.As(err, &he):
		return &apiError{Status: he.Status, Code: he.Code, Message: he.Msg}
	case errors.Is(err, user.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such user"}
	case errors.Is(err, user.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: "a user with this email exists"}
	case errors.Is(err, user.ErrInvalid):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_request",
			Message: "invalid user: " + strings.TrimPrefix(err.Error(), "user: invalid argument: ")}
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: err.Error()}
}

// view is the user's JSON as the API answers it (admin.UserView).
func (d *directUsers) view(ctx context.Context, id string) ([]byte, error) {
	u, err := d.users.Get(ctx, id)
	if err != nil {
		return nil, userErr(err)
	}
	return json.Marshal(admin.UserView(u))
}

func (d *directUsers) create(ctx context.Context, f admin.UserFields) ([]byte, error) {
	if f.Email == nil || f.Password == nil || f.Role == nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: "email, password and role are required"}
	}
	u := user.User{ID: user.NewID()}
	if _, err := f.ApplyUser(&u, d.cfg.Policy.Roles, d.params); err != nil {
		return nil, userErr(err)
	}
	if err := d.users.Create(ctx, u); err != nil {
		return nil, userErr(err)
	}
	d.record(ctx, audit.UserCreated, u.ID, "role: "+u.Role+" (authgate users create --config)")
	return d.view(ctx, u.ID)
}

func (d *directUsers) list(ctx context.Context, q url.Values) ([]byte, error) {
	all, err := d.users.List(ctx)
	if err != nil {
		return nil, userErr(err)
	}
	// The API's filter: q is a substring of the email, role is exact.
	search, role := strings.ToLower(q.Get("q")), q.Get("role")
	out := make([]admin.UserView, 0, len(all))
	for _, u := range all {
		if (search == "" || strings.Contains(u.Email, search)) && (role == "" || u.Role == role) {
			out = append(out, u)
		}
	}
	return json.Marshal(map[string]any{"users": out})
}

func (d *directUsers) get(ctx context.Context, id string) ([]byte, error) {
	if id == "me" {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_request",
			Message: `"me" is the caller of the API; --config has none: name the user by ID or email`}
	}
	return d.view(ctx, id)
}

func (d *directUsers) edit(ctx context.Context, id string, f admin.UserFields) ([]byte, error) {
	f, err := f.Prehash(d.params) // once, not on every compare-and-swap attempt
	if err != nil {
		return nil, userErr(err)
	}
	var ch admin.UserChange
	// On the record as it is at the write: a change a running gateway makes meanwhile
	// (the user enrolling TOTP) is not undone.
	u, err := d.users.Modify(ctx, id, func(cur *user.User) error {
		var err error
		ch, err = f.ApplyUser(cur, d.cfg.Policy.Roles, d.params)
		return err
	})
	if err != nil {
		return nil, userErr(err)
	}
	d.record(ctx, audit.UserEdited, u.ID, "fields: "+strings.Join(f.Names(), ",")+" (authgate users --config)")
	if err := d.changed(ctx, u.ID, ch); err != nil {
		return nil, err
	}
	return d.view(ctx, u.ID)
}

func (d *directUsers) remove(ctx context.Context, id string) error {
	if err := d.users.Delete(ctx, id); err != nil {
		return userErr(err)
	}
	d.record(ctx, audit.UserDeleted, id, "authgate users delete --config")
	// The user's keys, admin keys too, are revoked with them, as the API does.
	var revoked []invalidation
	err := admin.RevokeKeysOf(ctx, d.keys, id, time.Now(), func(k apikey.Key) {
		revoked = append(revoked, invalidation{credcache.DefaultChannel, auth.KeyTag(k.ID)})
		_ = d.audit.Record(ctx, audit.Event{Type: audit.KeyRevoked, KeyID: k.ID, Actor: "cli", Detail: "owner deleted: " + id})
	})
	if err != nil {
		d.warn("authgate: warning: the user is deleted, but not all of their keys were revoked (%v); they are refused as ownerless\n", err)
	}
	return d.changed(ctx, id, admin.UserChange{Access: true, Sessions: true}, revoked...)
}

// changed makes a stored change take effect on running gateways, as the gateway's own
// userChanged does: the user's cached keys and tokens are dropped on every replica (by
// owner tag, on both channels, with the extra invalidations more), and with ch.Sessions
// the refresh tokens stop working. The writes wait for Redis replicas first (see settle);
// that is the only error: the rest is warned about, since the change is stored.
func (d *directUsers) changed(ctx context.Context, id string, ch admin.UserChange, more ...invalidation) error {
	if !ch.Access && !ch.Sessions && len(more) == 0 {
		return nil
	}
	if ch.Sessions {
		if err := d.refresh.RevokeUser(ctx, id); err != nil {
			d.warn("authgate: warning: the change is stored, but the user's refresh tokens could not be revoked (%v)\n", err)
		}
	}
	invs := append([]invalidation{{credcache.DefaultChannel, auth.OwnerTag(id)}, {gateway.TokenChannel, auth.OwnerTag(id)}}, more...)
	return settle(ctx, d.st, d.cfg, d.warn, []string{gateway.UsersSlotKey, gateway.KeysSlotKey, gateway.RefreshSlotKey}, invs...)
}

// record writes the audit event to the store's audit stream; failures are ignored, the
// action has happened.
func (d *directUsers) record(ctx context.Context, event, userID, detail string) {
	_ = d.audit.Record(ctx, audit.Event{Type: event, UserID: userID, Actor: "cli", Detail: detail})
}
