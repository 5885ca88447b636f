package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/authgate/authgate/gateway/admin"
)

// openUserBackend picks the store itself (--config) or the management API.
func openUserBackend(ctx context.Context, kf keysFlags, set map[string]bool, getenv func(string) string, stderr io.Writer) (userBackend, error) {
	warn := func(format string, args ...any) { fmt.Fprintf(stderr, format, args...) }
	if kf.config != "" {
		if set["addr"] || set["token"] {
			return nil, errors.New("users: --config works on the store directly; it takes neither --addr nor --token")
		}
		d, err := openDirectUsers(ctx, kf.config, getenv)
		if err != nil {
			return nil, err
		}
		d.warn = warn
		return d, nil
	}
	c, err := openRemote("users", kf, getenv, stderr)
	if err != nil {
		return nil, err
	}
	return &remoteUsers{c: c}, nil
}

// remoteUsers is the management API's /users/ calls over HTTP. It is safe for concurrent use.
type remoteUsers struct {
	c *apiClient
}

func userPath(id string) string { return "/users/" + url.PathEscape(id) + "/" }

func (r *remoteUsers) close() error { return r.c.close() }

func (r *remoteUsers) create(ctx context.Context, f admin.UserFields) ([]byte, error) {
	return r.c.do(ctx, http.MethodPost, "/users/", f)
}

func (r *remoteUsers) list(ctx context.Context, q url.Values) ([]byte, error) {
	p := "/users/"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return r.c.do(ctx, http.MethodGet, p, nil)
}

func (r *remoteUsers) get(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodGet, userPath(id), nil)
}

func (r *remoteUsers) edit(ctx context.Context, id string, f admin.UserFields) ([]byte, error) {
	return r.c.do(ctx, http.MethodPatch, userPath(id), f)
}

func (r *remoteUsers) remove(ctx context.Context, id string) error {
	_, err := r.c.do(ctx, http.MethodDelete, userPath(id), nil)
	return err
}
