package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"gopkg.in/yaml.v3"
)

// TestMFAEnroll runs `authgate mfa enroll` as a user would, through pipes: the password,
// then (once the URI is shown) the authenticator's code. TOTP is then on: a login without
// a code is refused with mfa_required, and one with the next code gets in.
func TestMFAEnroll(t *testing.T) {
	t.Parallel()
	base := startServe(t, issuerYAML(t.TempDir(), "{type: memory}", "", ""), true)
	admin := cli{t: t, env: map[string]string{"HOME": t.TempDir(), "AUTHGATE_ADDR": base}}
	admin.okIn(rootPassword+"\n", "login", "--email", rootEmail, "--password-stdin")
	const email, password = "erin@example.com", "erin-password-123"
	admin.okIn(password+"\n", "users", "create", "--email", email, "--role", "viewer", "--password-stdin")

	home := t.TempDir()
	env := []string{"HOME=" + home}
	if code, out, errOut := binary(t, env, password+"\n", "login", "--email", email, "--addr", base, "--password-stdin"); code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}

	// A wrong password: nothing is enrolled.
	if code, _, errOut := binary(t, env, "not-the-password\n", "mfa", "enroll", "--password-stdin"); code != 1 || !strings.Contains(errOut, "reauth_failed") {
		t.Errorf("mfa enroll with a wrong password: exit %d, stderr %q; want 1 and reauth_failed", code, errOut)
	}

	cmd := exec.Command(binPath, "mfa", "enroll", "--password-stdin")
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := io.WriteString(stdin, password+"\n"); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	var uri string
	sc := bufio.NewScanner(stdoutPipe)
	for uri == "" && sc.Scan() {
		shown.WriteString(sc.Text() + "\n")
		if u, ok := strings.CutPrefix(sc.Text(), "otpauth URI: "); ok {
			uri = u
		}
	}
	if uri == "" {
		cmd.Wait()
		t.Fatalf("no otpauth URI shown; stdout:\n%s\nstderr:\n%s", shown.String(), errOut.String())
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || !strings.Contains(u.Path, email) {
		t.Fatalf("otpauth URI %q: want otpauth://totp/…%s…", uri, email)
	}
	secret := u.Query().Get("secret")
	if !strings.Contains(shown.String(), "Scan this with an authenticator app") || !strings.ContainsAny(shown.String(), "█▀▄") {
		t.Errorf("no QR code drawn before the URI:\n%s", shown.String())
	}
	at := time.Now()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, code+"\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	rest, _ := io.ReadAll(stdoutPipe)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mfa enroll: %v\nstdout:\n%s%s\nstderr:\n%s", err, shown.String(), rest, errOut.String())
	}
	if !strings.Contains(string(rest), "TOTP is on.") || !strings.Contains(errOut.String(), "log in again") {
		t.Errorf("mfa enroll: stdout %q, stderr %q", rest, errOut.String())
	}
	if strings.Contains(errOut.String(), password) {
		t.Error("the password is echoed on stderr")
	}

	// TOTP is on: the admin sees it, and login needs a code.
	if f := fields(admin.ok("users", "show", email)); f["mfa"] != "on" {
		t.Errorf("users show: mfa %q, want on", f["mfa"])
	}
	user := cli{t: t, env: map[string]string{"HOME": home}}
	_, _, err = user.in(password+"\n", "login", "--email", email, "--password-stdin")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "mfa_required" {
		t.Errorf("login without a code: got %v, want mfa_required", err)
	}
	next, _ := totp.GenerateCode(secret, at.Add(30*time.Second)) // the enrolment's code is spent
	user.okIn(password+"\n", "login", "--email", email, "--password-stdin", "--totp", next)

	// Enrolling again is refused while TOTP is on.
	if code, _, errOut := binary(t, env, password+"\n"+next+"\n", "mfa", "enroll", "--password-stdin"); code != 1 || !strings.Contains(errOut, "mfa_already_enabled") {
		t.Errorf("second enroll: exit %d, stderr %q; want mfa_already_enabled", code, errOut)
	}
	if code, _, errOut := binary(t, env, "", "mfa", "enroll"); code != 1 || !strings.Contains(errOut, "--password-stdin") {
		t.Errorf("enroll without a terminal or --password-stdin: exit %d, stderr %q", code, errOut)
	}
}

// TestUsersTeamsOutputFormats: users and teams lists and shows take -o yaml, -q and
// --no-headers like keys.
func TestUsersTeamsOutputFormats(t *testing.T) {
	t.Parallel()
	base := startServe(t, issuerYAML(t.TempDir(), "{type: memory}", "", ""), true)
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir(), "AUTHGATE_ADDR": base}}
	c.okIn(rootPassword+"\n", "login", "--email", rootEmail, "--password-stdin")
	alice := strings.TrimSpace(c.okIn("alice-password-1\n", "users", "create", "--email", "alice@example.com", "--role", "viewer", "--password-stdin", "-q"))
	if !userIDRe.MatchString(alice) {
		t.Fatalf("users create -q: got %q, want the ID", alice)
	}
	users := listEmails(t, c.ok("users", "list", "-o", "json"))
	ids := lines(c.ok("users", "list", "-q"))
	if len(ids) != len(users) || !slices.Contains(ids, alice) {
		t.Errorf("users list -q: got %v, want %d IDs with %s", ids, len(users), alice)
	}
	var ul struct {
		Users []struct {
			ID    string `yaml:"id"`
			Email string `yaml:"email"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal([]byte(c.ok("users", "list", "-o", "yaml")), &ul); err != nil || len(ul.Users) != len(users) {
		t.Errorf("users list -o yaml: %v, %+v", err, ul)
	}
	if got := strings.TrimSpace(c.ok("users", "show", "alice@example.com", "-q")); got != alice {
		t.Errorf("users show -q: got %q, want %s", got, alice)
	}
	var one struct {
		Email string `yaml:"email"`
		Role  string `yaml:"role"`
	}
	if err := yaml.Unmarshal([]byte(c.ok("users", "show", alice, "-o", "yaml")), &one); err != nil || one.Email != "alice@example.com" || one.Role != "viewer" {
		t.Errorf("users show -o yaml: %v %+v", err, one)
	}
	if got := lines(c.ok("users", "list", "--no-headers")); len(got) != len(users) || strings.HasPrefix(got[0], "ID ") {
		t.Errorf("users list --no-headers: %q", got)
	}

	c.ok("teams", "create", "--name", "Team A", "--id", "team-a")
	c.ok("teams", "create", "--name", "Team B", "--id", "team-b")
	if got := lines(c.ok("teams", "list", "-q")); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("teams list -q: got %v", got)
	}
	if got := lines(c.ok("teams", "list", "--no-headers")); len(got) != 2 || !strings.HasPrefix(got[0], "team-a ") {
		t.Errorf("teams list --no-headers: got %q", got)
	}
	var tl struct {
		Teams []struct {
			ID   string `yaml:"id"`
			Name string `yaml:"name"`
		} `yaml:"teams"`
	}
	if err := yaml.Unmarshal([]byte(c.ok("teams", "list", "-o", "yaml")), &tl); err != nil || len(tl.Teams) != 2 || tl.Teams[1].Name != "Team B" {
		t.Errorf("teams list -o yaml: %v %+v", err, tl)
	}
	if got := strings.TrimSpace(c.ok("teams", "show", "team-b", "-q")); got != "team-b" {
		t.Errorf("teams show -q: got %q", got)
	}
	if out, _, err := c.run("teams", "list", "-o", "toml"); err == nil {
		t.Errorf("teams list -o toml: got %q, want an error", out)
	}
}
