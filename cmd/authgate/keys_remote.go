package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	path, saved, err := loadSaved(getenv)
	if err != nil {
		return nil, err
	}
	addr, err := resolveAddr("keys", kf.addr, getenv, saved)
	if err != nil {
		return nil, err
	}
	// The session sends the credential, and renews a saved login once when its access
	// token has expired.
	s, err := openSession("keys", kf.token, getenv, path, saved, addr, kf.prefix,
		func(format string, args ...any) { fmt.Fprintf(stderr, format, args...) })
	if err != nil {
		return nil, err
	}
	return &remoteKeys{
		base:   strings.TrimRight(addr, "/") + "/" + strings.Trim(kf.prefix, "/") + "/api-keys/",
		token:  s.current(),
		client: &http.Client{Timeout: remoteTimeout, Transport: s},
	}, nil
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

// remoteKeys is the management API over HTTP. It is safe for concurrent use.
type remoteKeys struct {
	base   string // ".../api/auth/api-keys/"
	token  string
	client *http.Client
}

func (r *remoteKeys) close() error {
	r.client.CloseIdleConnections()
	return nil
}

func (r *remoteKeys) keyURL(id, sub string) string {
	u := r.base + url.PathEscape(id) + "/"
	if sub != "" {
		u += sub + "/"
	}
	return u
}

func (r *remoteKeys) create(ctx context.Context, req createBody) ([]byte, error) {
	return r.do(ctx, http.MethodPost, r.base, req)
}

func (r *remoteKeys) list(ctx context.Context, q url.Values) ([]byte, error) {
	u := r.base
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return r.do(ctx, http.MethodGet, u, nil)
}

func (r *remoteKeys) get(ctx context.Context, id string) ([]byte, error) {
	return r.do(ctx, http.MethodGet, r.keyURL(id, ""), nil)
}

func (r *remoteKeys) edit(ctx context.Context, id string, f admin.KeyFields) ([]byte, error) {
	return r.do(ctx, http.MethodPatch, r.keyURL(id, ""), f)
}

func (r *remoteKeys) refresh(ctx context.Context, id string) ([]byte, error) {
	return r.do(ctx, http.MethodPost, r.keyURL(id, "refresh"), nil)
}

func (r *remoteKeys) rotate(ctx context.Context, id string, revokeOldAfter *string) ([]byte, error) {
	var body any
	if revokeOldAfter != nil {
		body = map[string]string{"revoke_old_after": *revokeOldAfter}
	}
	return r.do(ctx, http.MethodPost, r.keyURL(id, "rotate"), body)
}

func (r *remoteKeys) revoke(ctx context.Context, id string) ([]byte, error) {
	return r.do(ctx, http.MethodDelete, r.keyURL(id, ""), nil)
}

func (r *remoteKeys) activity(ctx context.Context, id string) ([]byte, error) {
	return r.do(ctx, http.MethodGet, r.keyURL(id, "activity"), nil)
}

// do sends one call and returns the body of a 2xx answer; anything else is an *apiError.
func (r *remoteKeys) do(ctx context.Context, method, u string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", authorization(r.token))
	req.Header.Set("User-Agent", "authgate-cli/"+version())
	resp, err := r.client.Do(req)
	if err != nil {
		// The URL error names the method and address; never the token (a header).
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("keys: reading the answer of %s %s: %w", method, u, err)
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	ae := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(data, ae) != nil || ae.Code == "" {
		ae.Code = fmt.Sprintf("http_%d", resp.StatusCode)
		ae.Message = strings.TrimSpace(string(data))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200] + "…"
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, ae
}
