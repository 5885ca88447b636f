package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/authgate/authgate/gateway/admin"
	"log/slog"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
)

var (
	keyIDRe    = regexp.MustCompile(`key_[0-9A-Za-z]{20}`)
	plainKeyRe = regexp.MustCompile(`sk_(live|test)_[0-9A-Za-z]{36}`)
)

// startKeysGateway runs a gateway in this process from the config text cfgYAML (its
// listeners must be 127.0.0.1:0) until the test ends, and returns its base URL.
func startKeysGateway(t *testing.T, cfgYAML string) string {
	t.Helper()
	cfg, err := config.Parse("keys-test.yaml", []byte(cfgYAML), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, cfgYAML)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(bound):
			t.Errorf("Serve did not return within %s", bound)
		}
	})
	return "http://" + s.Addr().String()
}

// waitForKey polls the management API until key is accepted.
func waitForKey(t *testing.T, base, key string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	eventually(t, "the gateway accepts the key", func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/auth/api-keys/", nil)
		req.Header.Set("Authorization", "Token "+key)
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

const memoryGatewayYAML = `listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store: {type: memory}
bootstrap:
  admin_key: "ADMIN_KEY"
`

// cli runs authgate commands in process with a fixed environment.
type cli struct {
	t   *testing.T
	env map[string]string
}

func (c cli) getenv(k string) string { return c.env[k] }

// run returns stdout, stderr and the error of `authgate args...`.
func (c cli) run(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, c.getenv, &out, &errb)
	return out.String(), errb.String(), err
}

// ok runs args and fails the test on an error.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, errb, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("authgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errb)
	}
	return out
}

// apiErr runs args and returns the API error code it failed with.
func (c cli) apiErr(args ...string) string {
	c.t.Helper()
	out, _, err := c.run(args...)
	var ae *apiError
	if !errors.As(err, &ae) {
		c.t.Fatalf("authgate %s: got error %v (stdout %q), want an API error", strings.Join(args, " "), err, out)
	}
	return ae.Code
}

// fields reads "field: value" lines.
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func decodeKey(t *testing.T, out string) admin.KeyView {
	t.Helper()
	var k admin.KeyView
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("not a key as JSON: %v\n%s", err, out)
	}
	return k
}

// keyPage is one answer of GET /api-keys/.
type keyPage struct {
	Keys       []admin.KeyView `json:"keys"`
	NextCursor *string         `json:"next_cursor"`
}

func decodePage(t *testing.T, out string) keyPage {
	t.Helper()
	var p keyPage
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("not a key page as JSON: %v\n%s", err, out)
	}
	return p
}

func pageIDs(p keyPage) []string {
	var ids []string
	for _, k := range p.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestKeysRemoteLifecycle drives every remote keys command against a running gateway.
func TestKeysRemoteLifecycle(t *testing.T) {
	admin, _ := apikey.Generate("sk", apikey.Live)
	base := startKeysGateway(t, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", admin, 1))
	waitForKey(t, base, admin)
	c := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": admin}}

	// create
	out := c.ok("keys", "create", "--name", "ci", "--scopes", "reports:read,goals:read", "--expires-in", "90",
		"--ip", "10.0.0.0/8", "--ip", "192.168.1.1,172.16.0.0/12", "--env", "test", "--description", "CI runner",
		"--rate-limit", "100/1m")
	f := fields(out)
	id := f["id"]
	plain := plainKeyRe.FindString(out)
	if !keyIDRe.MatchString(id) || !strings.HasPrefix(plain, "sk_test_") {
		t.Fatalf("create: got id %q key %q, want both\n%s", id, plain, out)
	}
	if !strings.Contains(out, "only time the key is shown") {
		t.Errorf("create: no shown-once note\n%s", out)
	}
	want := map[string]string{"name": "ci", "environment": "test", "type": "personal", "status": "active",
		"scopes": "reports:read,goals:read", "allowed ips": "10.0.0.0/8,192.168.1.1,172.16.0.0/12",
		"rate limit": "100/1m", "expires in": "90 days", "description": "CI runner", "start": plain[:apikey.StartLen] + "…"}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("create: got %s %q, want %q", k, f[k], v)
		}
	}

	// list: table and JSON
	out = c.ok("keys", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if hdr := strings.Fields(lines[0]); !slices.Equal(hdr, []string{"ID", "NAME", "ENV", "TYPE", "TEAM", "STATUS", "HYGIENE", "SCOPES", "CREATED", "EXPIRES", "LAST", "USED", "START"}) {
		t.Errorf("list: got header %q", lines[0])
	}
	var row []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, id) {
			row = strings.Fields(l)
		}
	}
	if len(row) < 8 || row[1] != "ci" || row[2] != "test" || row[3] != "personal" || row[4] != "-" || row[5] != "active" || row[6] != "-" || row[7] != "reports:read,goals:read" {
		t.Errorf("list: got row %q for %s\n%s", row, id, out)
	}
	p := decodePage(t, c.ok("keys", "list", "--json", "--search", "c", "--env", "test", "--status", "active"))
	if got := pageIDs(p); !slices.Equal(got, []string{id}) {
		t.Errorf("list --json --search c --env test: got %v, want [%s]", got, id)
	}
	p = decodePage(t, c.ok("keys", "list", "--json", "--limit", "1", "--all", "--sort", "name", "--order", "desc"))
	if len(p.Keys) != 2 || p.Keys[0].Name != "ci" || p.Keys[1].Name != "bootstrap" {
		t.Errorf("list --limit 1 --all --sort name --order desc: got %v, want ci then bootstrap", pageIDs(p))
	}
	if out := c.ok("keys", "list", "--limit", "1"); !strings.Contains(out, "--all") {
		t.Errorf("list --limit 1: no hint that more keys exist\n%s", out)
	}

	// show (flags after the ID too)
	k := decodeKey(t, c.ok("keys", "show", id, "--json"))
	if k.ID != id || k.Name != "ci" || k.Secret != "" || k.RateLimit == nil || k.RateLimit.Requests != 100 {
		t.Errorf("show --json: got %+v", k)
	}
	if f := fields(c.ok("keys", "show", id)); f["id"] != id || f["created by"] == "" {
		t.Errorf("show: got %v", f)
	}

	// edit
	f = fields(c.ok("keys", "edit", id, "--name", "ci-2", "--scopes", "reports:read", "--ip", "", "--rate-limit", "none",
		"--expires-in", "30"))
	for k, v := range map[string]string{"name": "ci-2", "scopes": "reports:read", "allowed ips": "any",
		"rate limit": "default", "expires in": "30 days", "description": "CI runner"} {
		if f[k] != v {
			t.Errorf("edit: got %s %q, want %q", k, f[k], v)
		}
	}
	if got := c.apiErr("keys", "edit", id, "--expires-in", "7"); got != "invalid_request" {
		t.Errorf("edit --expires-in 7: got %q, want invalid_request", got)
	}

	// The key itself cannot manage keys: reports:read only.
	if got := c.apiErr("keys", "list", "--token", plain); got != "insufficient_scope" {
		t.Errorf("list with a reports:read key: got %q, want insufficient_scope", got)
	}

	// refresh
	before := decodeKey(t, c.ok("keys", "show", id, "--json"))
	after := decodeKey(t, c.ok("keys", "refresh", id, "--json"))
	if after.ExpiresAt == nil || before.ExpiresAt == nil || after.ExpiresAt.Before(*before.ExpiresAt) || after.Status != "active" {
		t.Errorf("refresh: expires_at %v -> %v, status %q", before.ExpiresAt, after.ExpiresAt, after.Status)
	}

	// rotate: a new key, the old one kept
	out = c.ok("keys", "rotate", id)
	id2 := fields(out)["id"]
	plain2 := plainKeyRe.FindString(out)
	if id2 == id || !keyIDRe.MatchString(id2) || plain2 == "" || plain2 == plain || !strings.Contains(out, "rotated "+id) {
		t.Fatalf("rotate: got id %q key %q\n%s", id2, plain2, out)
	}
	if f := fields(c.ok("keys", "show", id2)); f["name"] != "ci-2" || f["scopes"] != "reports:read" {
		t.Errorf("rotated key: got %v, want the old key's settings", f)
	}

	// revoke, then show says so
	if out := c.ok("keys", "revoke", id2); !strings.Contains(out, "revoked "+id2) {
		t.Errorf("revoke: got %q", out)
	}
	if f := fields(c.ok("keys", "show", id2)); f["status"] != "revoked" || f["revoked at"] == "-" {
		t.Errorf("show after revoke: got status %q revoked at %q", f["status"], f["revoked at"])
	}
	if got := c.apiErr("keys", "refresh", id2); got != "invalid_request" {
		t.Errorf("refresh a revoked key: got %q, want invalid_request", got)
	}

	// rotate with revoke-old-after 0s revokes the old key at once
	k3 := decodeKey(t, c.ok("keys", "rotate", id, "--revoke-old-after", "0s", "--json"))
	if !strings.HasPrefix(k3.Secret, "sk_test_") {
		t.Errorf("rotate --json: got key %q", k3.Secret)
	}
	if k := decodeKey(t, c.ok("keys", "show", id, "--json")); k.Status != "revoked" {
		t.Errorf("old key after rotate --revoke-old-after 0s: got status %q, want revoked", k.Status)
	}

	// activity: the admin key has been used
	act := c.ok("keys", "activity", id, "--json")
	var a activityJSON
	if err := json.Unmarshal([]byte(act), &a); err != nil {
		t.Errorf("activity --json: %v\n%s", err, act)
	}
	if out := c.ok("keys", "activity", id); !strings.Contains(out, "DATE") || !strings.Contains(out, "total") {
		t.Errorf("activity: got %q", out)
	}
}

// TestKeysRemoteErrors checks that failures name the API's error code and exit non-zero.
func TestKeysRemoteErrors(t *testing.T) {
	admin, _ := apikey.Generate("sk", apikey.Live)
	base := startKeysGateway(t, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", admin, 1))
	waitForKey(t, base, admin)
	c := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": admin}}
	unknown := apikey.NewID()
	for _, cmd := range []string{"show", "refresh", "rotate", "revoke", "activity"} {
		if got := c.apiErr("keys", cmd, unknown); got != "not_found" {
			t.Errorf("keys %s unknown: got %q, want not_found", cmd, got)
		}
	}
	if got := c.apiErr("keys", "create", "--name", "x", "--ip", "not-an-ip"); got != "invalid_request" {
		t.Errorf("create --ip not-an-ip: got %q, want invalid_request", got)
	}
	other, _ := apikey.Generate("sk", apikey.Live)
	if got := c.apiErr("keys", "list", "--token", other); got == "" {
		t.Errorf("list with an unknown key: got no code")
	}
	for _, args := range [][]string{
		{"keys", "show"},          // no ID
		{"keys", "create"},        // no name
		{"keys", "edit", unknown}, // nothing to change
		{"keys", "frobnicate"},    // unknown command
		{"keys", "create", "--name", "x", "--rate-limit", "fast"},
		{"keys", "create", "--name", "x", "--created-by", "u1"}, // --config only
		{"keys", "list", "--bogus"},
	} {
		if _, _, err := c.run(args...); err == nil {
			t.Errorf("authgate %s: want an error", strings.Join(args, " "))
		}
	}

	if out, _, err := c.run("keys", "show", "--help"); err != nil || out != "" {
		t.Errorf("keys show --help: got %v, stdout %q; want usage on stderr only", err, out)
	}

	// As a user runs it: exit status 1 and "authgate: <code>: <message>" on stderr.
	cmd := exec.Command(binPath, "keys", "show", unknown)
	cmd.Env = []string{"AUTHGATE_ADDR=" + base, "AUTHGATE_TOKEN=" + admin, "HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("binary keys show unknown: got %v, want exit status 1", err)
	}
	if got := stderr.String(); got != "authgate: not_found: no such key\n" {
		t.Errorf("binary stderr: got %q, want %q", got, "authgate: not_found: no such key\n")
	}
	if stdout.Len() != 0 {
		t.Errorf("binary stdout: got %q, want nothing", stdout.String())
	}
}

// TestKeysSavedCredential: without --token or AUTHGATE_TOKEN the saved credential is sent.
func TestKeysSavedCredential(t *testing.T) {
	admin, _ := apikey.Generate("sk", apikey.Live)
	base := startKeysGateway(t, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", admin, 1))
	waitForKey(t, base, admin)
	c := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "HOME": t.TempDir()}}
	if _, _, err := c.run("keys", "list"); err == nil || !strings.Contains(err.Error(), "no credential") {
		t.Errorf("list without a credential: got %v, want a no-credential error", err)
	}
	c.ok("token", "set", admin)
	if out := c.ok("keys", "list"); !strings.Contains(out, "bootstrap") {
		t.Errorf("list with the saved credential: got %q, want the bootstrap key", out)
	}
	// --addr beats AUTHGATE_ADDR.
	c.env["AUTHGATE_ADDR"] = "http://127.0.0.1:1"
	if out := c.ok("keys", "list", "--addr", base); !strings.Contains(out, "bootstrap") {
		t.Errorf("list --addr: got %q", out)
	}
}

func TestAuthorizationScheme(t *testing.T) {
	tests := []struct {
		name, tok, want string
	}{
		{"live key", "sk_live_abc", "Token sk_live_abc"},
		{"test key, other prefix", "ag_test_abc", "Token ag_test_abc"},
		{"jwt", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.sig_live_x", "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.sig_live_x"},
		{"opaque", "abc", "Bearer abc"},
		{"no prefix", "_live_abc", "Bearer _live_abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authorization(tt.tok); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
