package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
)

// passwordParams are the argon2id costs of new password hashes.
func (s *Server) passwordParams() user.Params {
	if s.opts.PasswordParams != nil {
		return *s.opts.PasswordParams
	}
	return user.DefaultParams
}

// userChanged makes a change to a user take effect at once on every replica: their
// cached personal keys and tokens are dropped (by owner tag), and with ch.Sessions their
// refresh tokens stop working.
func (s *Server) userChanged(ctx context.Context, id string, ch admin.UserChange) error {
	var errs []error
	if ch.Access || ch.Sessions {
		if err := s.keys.inv.Publish(ctx, auth.OwnerTag(id)); err != nil {
			errs = append(errs, fmt.Errorf("invalidate keys of user %s: %w", id, err))
		}
		if err := s.tokens.inv.Publish(ctx, auth.OwnerTag(id)); err != nil {
			errs = append(errs, fmt.Errorf("invalidate tokens of user %s: %w", id, err))
		}
	}
	if ch.Sessions && s.tokens.refresh != nil {
		if err := s.tokens.refresh.RevokeUser(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("revoke refresh tokens of %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// reauthenticate checks the current password (and TOTP code) of a user changing their own
// sign-in through the users API, as the issuer's calls do (login.Handler.Reauthenticate).
func (s *Server) reauthenticate(r *http.Request, u user.User, password, code string) error {
	if s.tokens == nil || s.tokens.login == nil {
		return &httperr.Error{Status: http.StatusForbidden, Code: "reauth_failed",
			Msg: "changing your own password or TOTP needs the built-in issuer (issuer.enabled)"}
	}
	return s.tokens.login.Reauthenticate(r, u, password, code)
}

// registerBootstrapAdmin creates bootstrap.admin_email as an admin user when the store
// has no user at all, retrying while the store is unreachable. Replicas starting at
// once race on Count; the email index makes all but one Create fail with ErrConflict.
func (s *Server) registerBootstrapAdmin(ctx context.Context, cfg *config.Config) {
	email, pw := cfg.Bootstrap.AdminEmail, cfg.Bootstrap.AdminPassword.Value()
	if email == "" || pw == "" {
		return
	}
	for {
		err := s.createBootstrapAdmin(ctx, email, pw)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.logger.Error("bootstrap admin user not created yet; retrying", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *Server) createBootstrapAdmin(ctx context.Context, email, pw string) error {
	n, err := s.keys.users.Count(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil // created once, when no user exists: later changes are the admins' own
	}
	h, err := s.passwords.Hash(ctx, pw, s.passwordParams())
	if err != nil {
		return fmt.Errorf("bootstrap.admin_password: %w", err)
	}
	u := user.User{ID: user.NewID(), Email: email, PasswordHash: h, Role: "admin"}
	err = s.keys.users.Create(ctx, u)
	switch {
	case errors.Is(err, user.ErrConflict):
		return nil // another replica was first
	case err != nil:
		return fmt.Errorf("create: %w", err)
	}
	s.logger.Info("bootstrap admin user created", slog.String("user_id", u.ID), slog.String("email", user.NormalizeEmail(email)))
	return nil
}

// keepBootstrap makes sure, now, every interval and after every resubscription to the
// store (see subscribed), that the bootstrap admin key and user exist: a Redis that lost
// its data (a restart without persistence, FLUSHALL) gets them back without a restart of
// the gateway, within a second or so of coming back. Each check is one store read.
//
// The first round is the replica's start-up: /readyz turns 200 only after it (startUp).
// Later rounds restore what a data loss took while the replica stays ready: every replica
// shares the loss, and dropping them all would empty the load balancer for the seconds a
// password hash takes.
func (s *Server) keepBootstrap(ctx context.Context, cfg *config.Config, interval time.Duration) {
	s.startUp(ctx, cfg)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.bootstrapNow:
		}
		s.keys.registerBootstrap(ctx, s.logger)
		s.registerBootstrapAdmin(ctx, cfg)
	}
}

// startUp waits until the store has answered and the bootstrap admin key and user that
// the configuration asks for are in place (stored now, or found there already), then
// marks the replica started. Each step retries while the store is unreachable, so a
// replica started during a store outage stays unready until the store is back.
func (s *Server) startUp(ctx context.Context, cfg *config.Config) {
	if s.started.Load() {
		return // memory store: done in New
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.store.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.keys.registerBootstrap(ctx, s.logger)
	s.registerBootstrapAdmin(ctx, cfg)
	if ctx.Err() != nil {
		return
	}
	s.started.Store(true)
	s.logger.Info("start-up done: the store answers and the bootstrap credentials are in place")
}
