package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeIssuer answers POST /users/ for the access token "new" only (expired_token for
// "old", invalid_token otherwise) and renews the refresh token "r1" into ("new", "r2").
type fakeIssuer struct {
	mu        sync.Mutex
	refreshes int      // calls of token/refresh
	bodies    []string // bodies of POST /users/ as received
}

func (f *fakeIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "POST /api/auth/token/refresh/":
		f.refreshes++
		var req struct{ Refresh string }
		if json.Unmarshal(body, &req) != nil || req.Refresh != "r1" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_token","message":"the refresh token is not valid"}`)
			return
		}
		io.WriteString(w, `{"access":"new","refresh":"r2"}`)
	case "POST /api/auth/users/":
		f.bodies = append(f.bodies, string(body))
		switch r.Header.Get("Authorization") {
		case "Bearer new":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"usr_00000000000000000001","email":"a@example.com","role":"viewer"}`)
		case "Bearer old":
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"expired_token","message":"the token has expired"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_token","message":"the bearer token is not valid"}`)
		}
	default:
		http.NotFound(w, r)
	}
}

// TestSessionRenewal: only the saved login's token is renewed, only for the gateway that
// issued it, only on expired_token, at most once; the request is repeated with its body.
func TestSessionRenewal(t *testing.T) {
	const body = `{"email":"a@example.com","password":"pw-of-a-123","role":"viewer"}`
	tests := []struct {
		name          string
		saved         credentials // Addr "BASE" is the fake's URL
		flagToken     string
		envToken      string
		wantErr       string // API error code; "" = success
		wantErrText   string // instead of wantErr: a substring of a local error
		wantRefreshes int
		wantPosts     int
		wantSaved     credentials // after the command
		wantStderr    string      // substring
	}{
		{name: "expired saved login is renewed", saved: credentials{Token: "old", Refresh: "r1", Email: "me@example.com", Addr: "BASE"},
			wantRefreshes: 1, wantPosts: 2, wantSaved: credentials{Token: "new", Refresh: "r2", Email: "me@example.com", Addr: "BASE"}},
		{name: "refused refresh token", saved: credentials{Token: "old", Refresh: "spent", Addr: "BASE"},
			wantErr: "expired_token", wantRefreshes: 1, wantPosts: 1, wantSaved: credentials{Token: "old", Refresh: "spent", Addr: "BASE"},
			wantStderr: "could not be renewed (invalid_token: the refresh token is not valid)"},
		{name: "--token is never renewed", saved: credentials{Token: "old", Refresh: "r1", Addr: "BASE"}, flagToken: "old",
			wantErr: "expired_token", wantPosts: 1, wantSaved: credentials{Token: "old", Refresh: "r1", Addr: "BASE"}},
		{name: "AUTHGATE_TOKEN is never renewed", saved: credentials{Token: "old", Refresh: "r1", Addr: "BASE"}, envToken: "old",
			wantErr: "expired_token", wantPosts: 1, wantSaved: credentials{Token: "old", Refresh: "r1", Addr: "BASE"}},
		{name: "tokens of another gateway's login are not sent", saved: credentials{Token: "old", Refresh: "r1", Addr: "http://127.0.0.1:1"},
			wantErrText: "the saved login is for http://127.0.0.1:1, not BASE", wantPosts: 0, wantSaved: credentials{Token: "old", Refresh: "r1", Addr: "http://127.0.0.1:1"}},
		{name: "invalid token is not renewed", saved: credentials{Token: "bad", Refresh: "r1", Addr: "BASE"},
			wantErr: "invalid_token", wantPosts: 1, wantSaved: credentials{Token: "bad", Refresh: "r1", Addr: "BASE"}},
		{name: "token set credential", saved: credentials{Token: "old"},
			wantErr: "expired_token", wantPosts: 1, wantSaved: credentials{Token: "old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIssuer{}
			srv := httptest.NewServer(f)
			defer srv.Close()
			fix := func(c credentials) credentials {
				c.Addr = strings.Replace(c.Addr, "BASE", srv.URL, 1)
				return c
			}
			home := t.TempDir()
			path := filepath.Join(home, ".config", "authgate", "credentials.json")
			if err := saveCredentials(path, fix(tt.saved)); err != nil {
				t.Fatal(err)
			}
			c := cli{t: t, env: map[string]string{"HOME": home, "AUTHGATE_ADDR": srv.URL, "AUTHGATE_TOKEN": tt.envToken}}
			args := []string{"users", "create", "--email", "a@example.com", "--role", "viewer", "--password-stdin", "--json"}
			if tt.flagToken != "" {
				args = append(args, "--token", tt.flagToken)
			}
			out, errOut, err := c.in("pw-of-a-123\n", args...)
			var ae *apiError
			switch {
			case tt.wantErrText != "":
				if want := strings.Replace(tt.wantErrText, "BASE", srv.URL, 1); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got error %v, want %q", err, want)
				}
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want success", err)
			case tt.wantErr != "" && (!errors.As(err, &ae) || ae.Code != tt.wantErr):
				t.Errorf("got error %v, want %s", err, tt.wantErr)
			case tt.wantErr == "" && !strings.Contains(out, "usr_00000000000000000001"):
				t.Errorf("got stdout %q, want the created user", out)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("got stderr %q, want it to contain %q", errOut, tt.wantStderr)
			}
			if f.refreshes != tt.wantRefreshes {
				t.Errorf("got %d refresh calls, want %d", f.refreshes, tt.wantRefreshes)
			}
			if len(f.bodies) != tt.wantPosts {
				t.Errorf("got %d POST /users/, want %d", len(f.bodies), tt.wantPosts)
			}
			for i, b := range f.bodies {
				if b != body {
					t.Errorf("POST %d: got body %q, want %q", i, b, body)
				}
			}
			got, err := loadCredentials(path)
			if err != nil || got != fix(tt.wantSaved) {
				t.Errorf("saved credentials: got %+v (%v), want %+v", got, err, fix(tt.wantSaved))
			}
		})
	}
}

// TestCredentialsOldFormat: a file written before login existed still works.
func TestCredentialsOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	writeConfig(t, path, `{"token": "sk_live_abc"}`)
	c, err := loadCredentials(path)
	if err != nil || c != (credentials{Token: "sk_live_abc"}) {
		t.Errorf("got %+v, %v; want the token only", c, err)
	}
}

// TestUsersUsageErrors: bad invocations fail before any call, with a message saying why.
func TestUsersUsageErrors(t *testing.T) {
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir(), "AUTHGATE_ADDR": "http://127.0.0.1:1", "AUTHGATE_TOKEN": "t"}}
	tests := []struct {
		args    []string
		stdin   string
		wantErr string
	}{
		{[]string{"users"}, "", "users: no command"},
		{[]string{"users", "frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"users", "show"}, "", "want one user"},
		{[]string{"users", "show", "a@example.com", "b@example.com"}, "", "want one user"},
		{[]string{"users", "set-role", "a@example.com"}, "", "want a user and a role"},
		{[]string{"users", "list", "extra"}, "", `unexpected argument "extra"`},
		{[]string{"users", "create", "--role", "viewer"}, "", "--email and --role are required"},
		{[]string{"users", "create", "--email", "a@example.com", "--role", "viewer"}, "", "not a terminal: pass --password-stdin"},
		{[]string{"users", "create", "--email", "a@example.com", "--role", "viewer", "--password-stdin"}, "", "standard input is empty"},
		{[]string{"users", "show", "alice"}, "", "neither a user ID (usr_…) nor an email"},
		{[]string{"users", "list", "--addr", "ftp://x"}, "", "want a URL"},
		{[]string{"login"}, "", "--email is required"},
		{[]string{"login", "--email", "a@example.com"}, "", "not a terminal: pass --password-stdin"},
		{[]string{"login", "--email", "a@example.com", "extra"}, "", `unexpected argument "extra"`},
		{[]string{"logout", "extra"}, "", `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := c.in(tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// logout refuses a credential that `token set` saved: it is not a session.
	c.ok("token", "set", "sk_live_abc")
	if _, _, err := c.run("logout"); err == nil || !strings.Contains(err.Error(), "authgate token remove") {
		t.Errorf("logout with a token-set credential: got %v, want a hint to token remove", err)
	}
	if out := c.ok("users", "help"); !strings.Contains(out, "usage: authgate users") {
		t.Errorf("users help: got %q", out)
	}
}

func TestParseStdinSecret(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"pw\n", "pw", ""},
		{"pw\r\n", "pw", ""},
		{"pw", "pw", ""},
		{" spaced pw \n", " spaced pw ", ""},
		{"", "", "empty"},
		{"\n", "", "empty"},
		{"a\nb\n", "", "one line"},
		{"a\rb", "", "one line"},
		{strings.Repeat("x", maxSecret+1), "", "longer than"},
	}
	for _, tt := range tests {
		got, err := parseStdinSecret([]byte(tt.in))
		if got != tt.want || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseStdinSecret(%q): got %q, %v; want %q, error containing %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseStdinSecret: whatever is piped in, the secret is the input less one line end,
// one non-empty line, never longer than maxSecret.
func FuzzParseStdinSecret(f *testing.F) {
	for _, s := range []string{"pw\n", "pw\r\n", "", "\n", "a\nb", "\r", "p\x00w", "ünïcode\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseStdinSecret(b)
		if err != nil {
			if s != "" {
				t.Errorf("error %v with secret %q", err, s)
			}
			return
		}
		in := string(b)
		if s == "" || len(s) > maxSecret || strings.ContainsAny(s, "\r\n") ||
			(in != s && in != s+"\n" && in != s+"\r\n") {
			t.Errorf("parseStdinSecret(%q) = %q", in, s)
		}
	})
}

// FuzzAnswerError: any answer body becomes an error with a code, never a panic.
func FuzzAnswerError(f *testing.F) {
	for _, s := range []string{`{"error":"expired_token","message":"x"}`, `{"error":""}`, `<html>bad gateway</html>`, ``, `null`, `{"error":5}`} {
		f.Add(401, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		ae := answerError(status, b)
		if ae.Code == "" || ae.Status != status || ae.Error() == "" {
			t.Errorf("answerError(%d, %q) = %+v", status, b, ae)
		}
		if errorCode(b) == "expired_token" && ae.Code != "expired_token" {
			t.Errorf("answerError(%d, %q): code %q, but errorCode says expired_token", status, b, ae.Code)
		}
	})
}

// TestLoginMFA: an account with TOTP needs --totp when there is no terminal to ask on;
// the code is sent with the password and the answer's tokens are saved.
func TestLoginMFA(t *testing.T) {
	var (
		mu  sync.Mutex
		got []loginBody
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b loginBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/auth/login/" || b.TOTP != "123456" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"mfa_required","message":"a TOTP code is required for this account"}`)
			return
		}
		io.WriteString(w, `{"access":"a.b.c","refresh":"rt_x","user":{"id":"usr_00000000000000000001","email":"m@example.com","role":"admin"}}`)
	}))
	defer srv.Close()
	home := t.TempDir()
	c := cli{t: t, env: map[string]string{"HOME": home}}
	_, _, err := c.in("pw\n", "login", "--email", "M@example.com", "--addr", srv.URL, "--prefix", "auth", "--password-stdin")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "mfa_required" || !strings.Contains(err.Error(), "pass --totp CODE") {
		t.Errorf("login without --totp and without a terminal: got %v, want mfa_required and a hint", err)
	}
	out := c.okIn("pw\n", "login", "--email", "M@example.com", "--addr", srv.URL, "--prefix", "auth", "--password-stdin", "--totp", " 123456 ")
	if !strings.HasPrefix(out, "logged in to "+srv.URL+" as m@example.com (usr_00000000000000000001, role admin)") {
		t.Errorf("login --totp: got %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []loginBody{{Email: "M@example.com", Password: "pw"}, {Email: "M@example.com", Password: "pw", TOTP: "123456"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("login bodies: got %+v, want %+v", got, want)
	}
	saved, mode := savedCredentials(t, home)
	if saved != (credentials{Token: "a.b.c", Refresh: "rt_x", Email: "m@example.com", Addr: srv.URL}) || mode != 0o600 {
		t.Errorf("saved: got %+v mode %o", saved, mode)
	}
}
