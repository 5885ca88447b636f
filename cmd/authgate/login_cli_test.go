package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/user"
)

var userIDRe = regexp.MustCompile(`^usr_[0-9A-Za-z]{20}$`)

const (
	rootEmail    = "root@example.com"
	rootPassword = "correct horse battery staple"
)

// issuerYAML is a gateway with the built-in issuer on store (a YAML flow mapping), its
// signing key in dir, and the bootstrap admin from the environment; issuerExtra goes
// under issuer:, extra at the end.
func issuerYAML(dir, store, issuerExtra, extra string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store: %s
issuer:
  enabled: true
  signing_key_file: %q
%sbootstrap:
  admin_email: "${AG_ADMIN_EMAIL:-}"
  admin_password: "${AG_ADMIN_PASSWORD:-}"
%s`, store, filepath.Join(dir, "signing-key.pem"), issuerExtra, extra)
}

// startServe writes cfgYAML to a file and runs `authgate serve` on it with the bootstrap
// admin's email and password in the environment. With bootstrap it waits for the
// admin's creation. It returns the gateway's base URL.
func startServe(t *testing.T, cfgYAML string, bootstrap bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, path, cfgYAML)
	g := startGateway(t, path, "AG_ADMIN_EMAIL="+rootEmail, "AG_ADMIN_PASSWORD="+rootPassword)
	if bootstrap {
		eventually(t, "bootstrap admin created", func() bool { return g.logLine("bootstrap admin user created") != nil })
	}
	return "http://" + g.mainAddr
}

// in runs `authgate args...` in process with stdin as its standard input.
func (c cli) in(stdin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := runIO(context.Background(), args, c.getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// okIn is in that fails the test on an error.
func (c cli) okIn(stdin string, args ...string) string {
	c.t.Helper()
	out, errb, err := c.in(stdin, args...)
	if err != nil {
		c.t.Fatalf("authgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errb)
	}
	return out
}

// binary runs the authgate binary as a user does and returns its exit code, stdout and stderr.
func binary(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("authgate %s: %v", strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

func savedCredentials(t *testing.T, home string) (credentials, os.FileMode) {
	t.Helper()
	path := filepath.Join(home, ".config", "authgate", "credentials.json")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	data, _ := os.ReadFile(path)
	var c credentials
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("credentials file %q: %v", data, err)
	}
	return c, st.Mode().Perm()
}

func decodeUser(t *testing.T, out string) user.User {
	t.Helper()
	var u user.User
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatalf("not a user as JSON: %v\n%s", err, out)
	}
	return u
}

func listEmails(t *testing.T, out string) []string {
	t.Helper()
	var l struct {
		Users []user.User `json:"users"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("not a user list as JSON: %v\n%s", err, out)
	}
	var emails []string
	for _, u := range l.Users {
		emails = append(emails, u.Email)
	}
	return emails
}

// postRefresh sends a refresh token to POST token/refresh and returns the status.
func postRefresh(t *testing.T, base, refresh string) int {
	t.Helper()
	resp, err := http.Post(base+"/api/auth/token/refresh/", "application/json",
		strings.NewReader(`{"refresh":"`+refresh+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUsersRemoteLifecycle logs in as the bootstrap admin with the real binary and
// drives every users command against a running `authgate serve`.
func TestUsersRemoteLifecycle(t *testing.T) {
	t.Parallel()
	base := startServe(t, issuerYAML(t.TempDir(), "{type: memory}", "", ""), true)
	home := t.TempDir()
	userEnv := []string{"HOME=" + home}

	// login through the binary, password on stdin
	code, out, errOut := binary(t, userEnv, rootPassword+"\n", "login", "--email", rootEmail, "--addr", base, "--password-stdin")
	if code != 0 || !strings.HasPrefix(out, "logged in to "+base+" as "+rootEmail+" (usr_") || errOut != "" {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	saved, mode := savedCredentials(t, home)
	if mode != 0o600 {
		t.Errorf("credentials file mode: got %o, want 600", mode)
	}
	if strings.Count(saved.Token, ".") != 2 || !strings.HasPrefix(saved.Refresh, "rt_") || saved.Email != rootEmail || saved.Addr != base {
		t.Errorf("credentials: got token %.12q… refresh %.6q… email %q addr %q", saved.Token, saved.Refresh, saved.Email, saved.Addr)
	}
	raw, _ := os.ReadFile(filepath.Join(home, ".config", "authgate", "credentials.json"))
	if bytes.Contains(raw, []byte(rootPassword)) || bytes.Contains(raw, []byte("password")) {
		t.Errorf("the credentials file holds the password:\n%s", raw)
	}

	// Every later command finds the gateway and the token in the saved login.
	c := cli{t: t, env: map[string]string{"HOME": home}}

	// create: table and JSON
	out = c.okIn("alice-password-1\n", "users", "create", "--email", "Alice@Example.com", "--role", "viewer", "--org", "acme", "--password-stdin")
	f := fields(out)
	aliceID := f["id"]
	if !userIDRe.MatchString(aliceID) || !strings.HasPrefix(out, "created "+aliceID+"\n") {
		t.Fatalf("create: got\n%s", out)
	}
	for k, v := range map[string]string{"email": "alice@example.com", "role": "viewer", "organization": "acme", "status": "active", "mfa": "off"} {
		if f[k] != v {
			t.Errorf("create: got %s %q, want %q", k, f[k], v)
		}
	}
	bob := decodeUser(t, c.okIn("bob-password-12\n", "users", "create", "--email", "bob@example.com", "--role", "member", "--password-stdin", "--json"))
	if !userIDRe.MatchString(bob.ID) || bob.Email != "bob@example.com" || bob.Role != "member" || bob.Organization != "" || bob.Disabled {
		t.Errorf("create --json: got %+v", bob)
	}
	if got := c.apiErrIn("carol-password-1\n", "users", "create", "--email", "carol@example.com", "--role", "boss", "--password-stdin"); got != "invalid_request" {
		t.Errorf("create --role boss: got %q, want invalid_request", got)
	}

	// list: table, JSON, filters
	out = c.ok("users", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if hdr := strings.Fields(lines[0]); !slices.Equal(hdr, []string{"ID", "EMAIL", "ROLE", "ORGANIZATION", "STATUS", "MFA", "CREATED"}) {
		t.Errorf("list: got header %q", lines[0])
	}
	var row []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, aliceID) {
			row = strings.Fields(l)
		}
	}
	if want := []string{aliceID, "alice@example.com", "viewer", "acme", "active", "off"}; len(row) < 6 || !slices.Equal(row[:6], want) {
		t.Errorf("list: got row %q, want %q\n%s", row, want, out)
	}
	if got := listEmails(t, c.ok("users", "list", "--json")); !slices.Equal(got, []string{"alice@example.com", "bob@example.com", rootEmail}) {
		t.Errorf("list --json: got %v", got)
	}
	if got := listEmails(t, c.ok("users", "list", "--json", "--search", "ALI")); !slices.Equal(got, []string{"alice@example.com"}) {
		t.Errorf("list --search ALI: got %v", got)
	}
	if got := listEmails(t, c.ok("users", "list", "--json", "--role", "member")); !slices.Equal(got, []string{"bob@example.com"}) {
		t.Errorf("list --role member: got %v", got)
	}
	if out := c.ok("users", "list", "--role", "viewer", "--search", "bob"); strings.TrimSpace(out) != "no users" {
		t.Errorf("list with no match: got %q", out)
	}

	// show by email and by ID, flags after the argument
	if u := decodeUser(t, c.ok("users", "show", "alice@example.com", "--json")); u.ID != aliceID || u.Organization != "acme" {
		t.Errorf("show EMAIL --json: got %+v", u)
	}
	if f := fields(c.ok("users", "show", bob.ID)); f["email"] != "bob@example.com" || f["role"] != "member" {
		t.Errorf("show ID: got %v", f)
	}
	if got := c.apiErr("users", "show", "nobody@example.com"); got != "not_found" {
		t.Errorf("show an unknown email: got %q, want not_found", got)
	}

	// set-role
	out = c.ok("users", "set-role", "alice@example.com", "member")
	if f := fields(out); f["role"] != "member" || !strings.HasPrefix(out, "changed the role of "+aliceID) {
		t.Errorf("set-role: got\n%s", out)
	}
	if got := c.apiErr("users", "set-role", aliceID, "boss"); got != "invalid_request" {
		t.Errorf("set-role boss: got %q, want invalid_request", got)
	}

	// disable: then alice's login fails like a wrong password
	if f := fields(c.ok("users", "disable", "alice@example.com")); f["status"] != "disabled" {
		t.Errorf("disable: got %v", f)
	}
	aliceHome := t.TempDir()
	code, out, errOut = binary(t, []string{"HOME=" + aliceHome}, "alice-password-1\n", "login", "--email", "alice@example.com", "--addr", base, "--password-stdin")
	if want := "authgate: invalid_login: the email or the password is wrong\n"; code != 1 || out != "" || errOut != want {
		t.Errorf("login of a disabled user: exit %d stdout %q stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(aliceHome, ".config", "authgate", "credentials.json")); !os.IsNotExist(err) {
		t.Errorf("a failed login wrote credentials: %v", err)
	}

	// enable: alice logs in, and as a non-admin may not manage users
	if f := fields(c.ok("users", "enable", aliceID)); f["status"] != "active" {
		t.Errorf("enable: got %v", f)
	}
	alice := cli{t: t, env: map[string]string{"HOME": aliceHome}}
	alice.okIn("alice-password-1\n", "login", "--email", "alice@example.com", "--addr", base, "--password-stdin")
	_, _, err := alice.run("users", "list")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != "insufficient_scope" || !strings.Contains(err.Error(), "needs admin") {
		t.Errorf("users list as a member: got %v, want 403 insufficient_scope naming admin", err)
	}
	if f := fields(alice.ok("users", "show", "me")); f["id"] != aliceID {
		t.Errorf("users show me as alice: got %v", f)
	}

	// reset-mfa
	if out := c.ok("users", "reset-mfa", "alice@example.com"); !strings.HasPrefix(out, "removed the TOTP of "+aliceID) || fields(out)["mfa"] != "off" {
		t.Errorf("reset-mfa: got\n%s", out)
	}

	// delete, text and JSON
	if out := c.ok("users", "delete", "bob@example.com"); out != "deleted "+bob.ID+" (bob@example.com)\n" {
		t.Errorf("delete: got %q", out)
	}
	if got := c.apiErr("users", "show", bob.ID); got != "not_found" {
		t.Errorf("show after delete: got %q, want not_found", got)
	}
	var del struct {
		ID      string `json:"id"`
		Deleted bool   `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(c.ok("users", "delete", aliceID, "--json")), &del); err != nil || del.ID != aliceID || !del.Deleted {
		t.Errorf("delete --json: got %+v (%v)", del, err)
	}
	if got := c.apiErr("users", "delete", "root@example.com"); got != "invalid_request" {
		t.Errorf("delete yourself: got %q, want invalid_request", got)
	}

	// A wrong password: exit 1, the API's message, the saved login untouched.
	code, out, errOut = binary(t, userEnv, "not the password\n", "login", "--email", rootEmail, "--password-stdin")
	if want := "authgate: invalid_login: the email or the password is wrong\n"; code != 1 || out != "" || errOut != want {
		t.Errorf("wrong password: exit %d stdout %q stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	if now, _ := savedCredentials(t, home); now != saved {
		t.Errorf("a failed login changed the saved credentials")
	}

	// logout: the tokens are revoked at the gateway and gone from the file.
	if out := c.ok("logout"); out != "logged out of "+base+" ("+rootEmail+")\n" {
		t.Errorf("logout: got %q", out)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "authgate", "credentials.json")); !os.IsNotExist(err) {
		t.Errorf("credentials file after logout: %v, want none", err)
	}
	if got := postRefresh(t, base, saved.Refresh); got != http.StatusUnauthorized {
		t.Errorf("refresh after logout: got %d, want 401", got)
	}
	if _, _, err := c.run("users", "list"); err == nil || !strings.Contains(err.Error(), "authgate login") {
		t.Errorf("users list after logout: got %v, want a no-credential error naming authgate login", err)
	}
	if out := c.ok("logout"); out != "not logged in\n" {
		t.Errorf("second logout: got %q", out)
	}
}

// apiErrIn runs args with stdin and returns the API error code it failed with.
func (c cli) apiErrIn(stdin string, args ...string) string {
	c.t.Helper()
	out, _, err := c.in(stdin, args...)
	var ae *apiError
	if !errors.As(err, &ae) {
		c.t.Fatalf("authgate %s: got error %v (stdout %q), want an API error", strings.Join(args, " "), err, out)
	}
	return ae.Code
}

// waitExpired polls until the gateway refuses tok as expired.
func waitExpired(t *testing.T, base, tok string) {
	t.Helper()
	eventually(t, "the access token expires", func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/auth/users/me/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var e struct {
			Code string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode == http.StatusUnauthorized && e.Code == "expired_token"
	})
}

// TestLoginRefreshesExpiredToken: with a 2s access token, a command after expiry renews
// the saved login once and goes through; a token from the environment is never renewed;
// logout with an expired token renews it first, then ends the renewed family.
func TestLoginRefreshesExpiredToken(t *testing.T) {
	t.Parallel()
	base := startServe(t, issuerYAML(t.TempDir(), "{type: memory}", "  access_ttl: 2s\n", "jwt: {leeway: 0s}\n"), true)
	home := t.TempDir()
	c := cli{t: t, env: map[string]string{"HOME": home, "AUTHGATE_ADDR": base}}
	c.okIn(rootPassword, "login", "--email", rootEmail, "--password-stdin")
	first, _ := savedCredentials(t, home)
	waitExpired(t, base, first.Token)

	out, errOut, err := c.run("users", "show", "me")
	if err != nil || fields(out)["email"] != rootEmail || errOut != "" {
		t.Fatalf("users show me after expiry: %v, stdout %q, stderr %q; want the admin, renewed silently", err, out, errOut)
	}
	second, mode := savedCredentials(t, home)
	if second.Token == first.Token || second.Refresh == first.Refresh || second.Email != rootEmail || second.Addr != base || mode != 0o600 {
		t.Errorf("after the renewal: token changed %t, refresh changed %t, email %q, addr %q, mode %o",
			second.Token != first.Token, second.Refresh != first.Refresh, second.Email, second.Addr, mode)
	}
	// The renewed token works as is: no second renewal.
	c.ok("users", "list")
	if now, _ := savedCredentials(t, home); now != second {
		t.Errorf("a command with a valid token renewed it again")
	}

	// An expired token from the environment is not the saved login's: never renewed.
	env := cli{t: t, env: map[string]string{"HOME": home, "AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": first.Token}}
	_, _, err = env.run("users", "list")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "expired_token" || !strings.Contains(ae.Message, "authgate login") {
		t.Errorf("users list with an expired AUTHGATE_TOKEN: got %v, want expired_token and a hint to log in", err)
	}
	if now, _ := savedCredentials(t, home); now != second {
		t.Errorf("a command with AUTHGATE_TOKEN changed the saved login")
	}

	// logout with an expired access token: renewed, then the renewed family ends.
	waitExpired(t, base, second.Token)
	if out := c.ok("logout"); out != "logged out of "+base+" ("+rootEmail+")\n" {
		t.Errorf("logout: got %q", out)
	}
	for _, r := range []string{first.Refresh, second.Refresh} {
		if got := postRefresh(t, base, r); got != http.StatusUnauthorized {
			t.Errorf("a refresh token of the session after logout: got %d, want 401", got)
		}
	}
}
