package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/admin"
)

// remoteTimeout bounds one management call, connection included.
const remoteTimeout = 30 * time.Second

// maxAnswer bounds how much of an answer is read (a list page of 200 keys is far less).
const maxAnswer = 16 << 20

// openBackend picks the store itself (--config) or the management API.
func openBackend(ctx context.Context, kf keysFlags, set map[string]bool, getenv func(string) string, stderr io.Writer) (keyBackend, error) {
	if kf.config != "" {
		if set["addr"] || set["token"] {
			return nil, errors.New("keys: --config works on the store directly; it takes neither --addr nor --token")
		}
		d, err := openDirect(ctx, kf.config, getenv)
		if err != nil {
			return nil, err
		}
		d.warn = func(format string, args ...any) { fmt.Fprintf(stderr, format, args...) }
		return d, nil
	}
	c, err := openRemote("keys", kf, getenv, stderr)
	if err != nil {
		return nil, err
	}
	return &remoteKeys{c: c}, nil
}

// openRemote is the management API client of the remote commands: the gateway (--addr,
// else $AUTHGATE_ADDR, else the saved login's, else defaultAddr), trusted through
// --cacert, with the credential of openSession, which renews a saved login once when its
// access token has expired.
func openRemote(what string, kf keysFlags, getenv func(string) string, stderr io.Writer) (*apiClient, error) {
	warn := func(format string, args ...any) { fmt.Fprintf(stderr, format, args...) }
	path, saved, err := loadSaved(getenv)
	if err != nil {
		return nil, err
	}
	addr, err := resolveAddr(what, kf.addr, getenv, saved)
	if err != nil {
		return nil, err
	}
	tr, err := transportFor(what, kf.cacert, getenv)
	if err != nil {
		return nil, err
	}
	s, err := openSession(what, kf.token, getenv, path, saved, addr, kf.prefix, tr, warn)
	if err != nil {
		return nil, err
	}
	return &apiClient{what: what, base: apiBase(addr, kf.prefix), client: &http.Client{Timeout: remoteTimeout, Transport: s}}, nil
}

// authorization is the header value for tok: "Token <key>" for an API key, else
// "Bearer <jwt>".
func authorization(tok string) string {
	if hasKeyForm(tok) {
		return "Token " + tok
	}
	return "Bearer " + tok
}

// hasKeyForm reports whether tok looks like "<prefix>_live_…" or "<prefix>_test_…". The
// CLI does not know the gateway's api_keys.prefix, so any prefix without '_' counts; a
// JWT has dots, which a key never has.
func hasKeyForm(tok string) bool {
	if strings.Contains(tok, ".") {
		return false
	}
	p, rest, ok := strings.Cut(tok, "_")
	return ok && p != "" && (strings.HasPrefix(rest, "live_") || strings.HasPrefix(rest, "test_"))
}

// remoteKeys is the management API's /api-keys/ calls over HTTP. It is safe for
// concurrent use.
type remoteKeys struct {
	c *apiClient
}

func (r *remoteKeys) close() error { return r.c.close() }

func keyPath(id, sub string) string {
	u := "/api-keys/" + url.PathEscape(id) + "/"
	if sub != "" {
		u += sub + "/"
	}
	return u
}

func (r *remoteKeys) create(ctx context.Context, req createBody) ([]byte, error) {
	return r.c.do(ctx, http.MethodPost, "/api-keys/", req)
}

func (r *remoteKeys) list(ctx context.Context, q url.Values) ([]byte, error) {
	u := "/api-keys/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return r.c.do(ctx, http.MethodGet, u, nil)
}

func (r *remoteKeys) get(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodGet, keyPath(id, ""), nil)
}

func (r *remoteKeys) edit(ctx context.Context, id string, f admin.KeyFields) ([]byte, error) {
	return r.c.do(ctx, http.MethodPatch, keyPath(id, ""), f)
}

func (r *remoteKeys) refresh(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodPost, keyPath(id, "refresh"), nil)
}

func (r *remoteKeys) rotate(ctx context.Context, id string, revokeOldAfter *string) ([]byte, error) {
	var body any
	if revokeOldAfter != nil {
		body = map[string]string{"revoke_old_after": *revokeOldAfter}
	}
	return r.c.do(ctx, http.MethodPost, keyPath(id, "rotate"), body)
}

func (r *remoteKeys) revoke(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodDelete, keyPath(id, ""), nil)
}

func (r *remoteKeys) activity(ctx context.Context, id string) ([]byte, error) {
	return r.c.do(ctx, http.MethodGet, keyPath(id, "activity"), nil)
}
