package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// defaultAddr is the management API when neither --addr, AUTHGATE_ADDR nor a login says.
const defaultAddr = "http://localhost:8080"

// resolveAddr is --addr, else $AUTHGATE_ADDR, else the address of the saved login, else
// defaultAddr (docs/cli.md, "Which gateway"); "host:port" gets http://. what names the
// command in errors.
func resolveAddr(what, flagAddr string, getenv func(string) string, saved credentials) (string, error) {
	addr := flagAddr
	if addr == "" {
		addr = getenv("AUTHGATE_ADDR")
	}
	if addr == "" {
		addr = saved.Addr
	}
	if addr == "" {
		addr = defaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%s: --addr %q: want a URL such as %s", what, addr, defaultAddr)
	}
	return strings.TrimRight(addr, "/"), nil
}

// apiBase is addr joined with auth_api.prefix, without a trailing slash.
func apiBase(addr, prefix string) string {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return addr
	}
	return addr + "/" + p
}

// loadSaved reads the saved credentials; a missing file, or no home directory to keep
// one in (a service account, a container), is an empty credentials with path "".
func loadSaved(getenv func(string) string) (path string, c credentials, err error) {
	path, err = credentialsPath(getenv)
	if err != nil {
		return "", c, nil
	}
	c, err = loadCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, credentials{}, nil
	}
	return path, c, err
}

// session is the credential a remote command sends, as an http.RoundTripper that sets
// the Authorization header of every request. When the credential is the access token
// that `authgate login` saved for this gateway, a 401 expired_token answer renews it once
// with the saved refresh token, saves the new pair and repeats the request. It is safe
// for concurrent use.
type session struct {
	base http.RoundTripper
	warn func(format string, args ...any)

	mu         sync.Mutex
	token      string
	saved      credentials // the login that token comes from; Refresh "" when it cannot renew
	path       string      // the credentials file
	refreshURL string      // "" when token cannot be renewed
	renewed    bool        // renew at most once per command
}

// openSession picks the credential: --token, else $AUTHGATE_TOKEN, else the saved one,
// and sends it over base. The tokens of a saved login go only to the gateway that issued
// them: for another addr the command fails and says how to get a credential there. Only
// the saved login can be renewed; a credential saved by `token set` has no address and
// goes wherever the command talks to.
func openSession(what, flagTok string, getenv func(string) string, path string, saved credentials, addr, prefix string, base http.RoundTripper, warn func(string, ...any)) (*session, error) {
	s := &session{base: base, warn: warn, path: path}
	switch {
	case flagTok != "":
		s.token = flagTok
	case getenv("AUTHGATE_TOKEN") != "":
		s.token = getenv("AUTHGATE_TOKEN")
	case saved.Token != "" && saved.Addr != "" && saved.Addr != addr:
		return nil, fmt.Errorf("%s: the saved login is for %s, not %s: log in there (authgate login --addr %s), or pass --token or AUTHGATE_TOKEN",
			what, saved.Addr, addr, addr)
	case saved.Token != "":
		s.token = saved.Token
		if saved.Refresh != "" {
			s.saved = saved
			s.refreshURL = apiBase(addr, prefix) + "/token/refresh/"
		}
	default:
		return nil, fmt.Errorf("%s: no credential: log in with `authgate login --email you@example.com`, pass --token, or set AUTHGATE_TOKEN", what)
	}
	return s, nil
}

// current is the token sent now.
func (s *session) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// RoundTrip sends req with the session's credential and renews it once on expired_token.
func (s *session) RoundTrip(req *http.Request) (*http.Response, error) {
	used := s.current()
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", authorization(used))
	resp, err := s.base.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !s.renewable() {
		return resp, err
	}
	canRepeat := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !canRepeat {
		return resp, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil || errorCode(data) != "expired_token" {
		return resp, nil
	}
	tok, ok := s.renew(req.Context(), used)
	if !ok {
		return resp, nil // the caller sees expired_token and is told to log in again
	}
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	again.Header.Set("Authorization", authorization(tok))
	return s.base.RoundTrip(again)
}

// renewable reports whether the session may still renew its token.
func (s *session) renewable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshURL != "" && !s.renewed
}

// renew exchanges the saved refresh token for a new pair, saves it and returns the new
// access token. used is the token that was refused: when another request renewed it
// meanwhile, its successor is returned without a second exchange.
func (s *session) renew(ctx context.Context, used string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != used {
		return s.token, true
	}
	if s.refreshURL == "" || s.renewed {
		return "", false
	}
	s.renewed = true
	ans, err := s.exchange(ctx)
	if err != nil {
		s.warn("authgate: the saved login could not be renewed (%v)\n", err)
		return "", false
	}
	s.token, s.saved.Token, s.saved.Refresh = ans.Access, ans.Access, ans.Refresh
	if err := saveCredentials(s.path, s.saved); err != nil {
		// The old refresh token is spent: this command goes on, the next one needs a login.
		s.warn("authgate: warning: the renewed login could not be saved (%v); log in again afterwards\n", err)
	}
	return s.token, true
}

// refreshAnswer is the answer of POST {prefix}/token/refresh/.
type refreshAnswer struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// exchange is POST token/refresh with the saved refresh token. s.mu is held.
func (s *session) exchange(ctx context.Context) (refreshAnswer, error) {
	var ans refreshAnswer
	body, _ := json.Marshal(map[string]string{"refresh": s.saved.Refresh}) // cannot fail
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.refreshURL, bytes.NewReader(body))
	if err != nil {
		return ans, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authgate-cli/"+version())
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return ans, err
	}
	if resp.StatusCode != http.StatusOK {
		return ans, answerError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &ans); err != nil || ans.Access == "" || ans.Refresh == "" {
		return refreshAnswer{}, errors.New("unexpected answer to token/refresh")
	}
	return ans, nil
}

// errorCode is the "error" of an API error answer, "" if data is not one.
func errorCode(data []byte) string {
	var e struct {
		Code string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	return e.Code
}

// answerError is the *apiError of a non-2xx answer: the API's code and message, else
// "http_<status>" and the start of the body.
func answerError(status int, data []byte) *apiError {
	ae := &apiError{Status: status}
	if json.Unmarshal(data, ae) != nil || ae.Code == "" {
		ae.Code = fmt.Sprintf("http_%d", status)
		ae.Message = strings.TrimSpace(string(data))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200] + "…"
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(status)
		}
	}
	return ae
}

// apiClient calls the management API and the issuer under one base URL. Its client's
// transport is a *session for authenticated calls, a plain one for login. It is safe for
// concurrent use.
type apiClient struct {
	what   string // names the command in errors: "users", "login"
	base   string // apiBase(addr, prefix)
	client *http.Client
}

// do sends one call to base+path (or to path when it is a whole URL) and returns the body of a 2xx answer; anything else is
// an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.what, err)
		}
		rd = bytes.NewReader(b) // NewRequest sets GetBody: a renewed session can resend it
	}
	u := path
	if !strings.Contains(path, "://") {
		u = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.what, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authgate-cli/"+version())
	resp, err := c.client.Do(req)
	if err != nil {
		// The URL error names the method and address; never a token (a header) or a
		// password (the body).
		return nil, fmt.Errorf("%s: %w", c.what, withTLSHint(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer of %s %s: %w", c.what, method, u, err)
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	ae := answerError(resp.StatusCode, data)
	if ae.Code == "expired_token" {
		ae.Message += "; log in again: authgate login"
	}
	return nil, ae
}

func (c *apiClient) close() error {
	c.client.CloseIdleConnections()
	return nil
}

// CloseIdleConnections closes the idle connections of the underlying transport, so
// http.Client.CloseIdleConnections reaches them.
func (s *session) CloseIdleConnections() {
	if ci, ok := s.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
