package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestUsersDirect: users made with --config on the gateway's Redis can log in at a
// running gateway, and disabling one with --config makes that gateway refuse their
// cached token within 1s and their refresh token at once.
func TestUsersDirect(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	yaml := issuerYAML(t.TempDir(), fmt.Sprintf("{type: redis, redis: {addrs: [%q], key_prefix: \"ut:\"}}", srv.Addr()), "", "")
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, yaml)
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir()}}

	// The first admin, with the gateway down; then a viewer.
	admin := decodeUser(t, c.okIn("first-admin-password\n", "users", "create", "--config", cfgPath, "--email", "ops@example.com",
		"--role", "admin", "--password-stdin", "--json"))
	if !userIDRe.MatchString(admin.ID) || admin.Role != "admin" || admin.Disabled {
		t.Fatalf("create --config: got %+v", admin)
	}
	out := c.okIn("dora-password-123\n", "users", "create", "--config", cfgPath, "--email", "dora@example.com",
		"--role", "viewer", "--org", "acme", "--password-stdin")
	doraID := fields(out)["id"]
	if !userIDRe.MatchString(doraID) || fields(out)["organization"] != "acme" {
		t.Fatalf("create --config: got\n%s", out)
	}
	// The API's rules apply: ApplyUser.
	for _, tt := range []struct{ stdin, email, role, want string }{
		{"dora-password-123\n", "dora@example.com", "viewer", "conflict"},
		{"some-password-123\n", "eve@example.com", "boss", "invalid_request"},
		{"some-password-123\n", "not-an-email", "viewer", "invalid_request"},
	} {
		if got := c.apiErrIn(tt.stdin, "users", "create", "--config", cfgPath, "--email", tt.email, "--role", tt.role, "--password-stdin"); got != tt.want {
			t.Errorf("create --config %s %s: got %q, want %q", tt.email, tt.role, got, tt.want)
		}
	}
	if got := listEmails(t, c.ok("users", "list", "--config", cfgPath, "--json")); !slices.Equal(got, []string{"dora@example.com", "ops@example.com"}) {
		t.Errorf("list --config: got %v", got)
	}
	if got := listEmails(t, c.ok("users", "list", "--config", cfgPath, "--json", "--role", "admin")); !slices.Equal(got, []string{"ops@example.com"}) {
		t.Errorf("list --config --role admin: got %v", got)
	}
	if f := fields(c.ok("users", "set-role", "dora@example.com", "member", "--config", cfgPath)); f["role"] != "member" {
		t.Errorf("set-role --config: got %v", f)
	}

	// A gateway on the same Redis: dora logs in and her token is cached.
	base := startServe(t, yaml, false)
	dora := cli{t: t, env: map[string]string{"HOME": t.TempDir(), "AUTHGATE_ADDR": base}}
	dora.okIn("dora-password-123", "login", "--email", "dora@example.com", "--password-stdin")
	saved, _ := savedCredentials(t, dora.env["HOME"])
	if f := fields(dora.ok("users", "show", "me")); f["id"] != doraID || f["role"] != "member" {
		t.Fatalf("users show me as dora: got %v", f)
	}

	// Disabled directly: the gateway refuses the cached token within 1s.
	if f := fields(c.ok("users", "disable", doraID, "--config", cfgPath)); f["status"] != "disabled" {
		t.Errorf("disable --config: got %v", f)
	}
	disabled := time.Now()
	for {
		_, _, err := dora.run("users", "show", "me")
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			break
		}
		if time.Since(disabled) > time.Second {
			t.Fatalf("the gateway still accepts a disabled user's token 1s after disable --config (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := postRefresh(t, base, saved.Refresh); got != http.StatusUnauthorized {
		t.Errorf("refresh token of a user disabled with --config: got %d, want 401", got)
	}
	if f := fields(c.ok("users", "show", "dora@example.com", "--config", cfgPath)); f["status"] != "disabled" {
		t.Errorf("show --config: got %v", f)
	}

	// enable, reset-mfa, delete
	if f := fields(c.ok("users", "enable", "dora@example.com", "--config", cfgPath)); f["status"] != "active" {
		t.Errorf("enable --config: got %v", f)
	}
	if f := fields(c.ok("users", "reset-mfa", doraID, "--config", cfgPath)); f["mfa"] != "off" {
		t.Errorf("reset-mfa --config: got %v", f)
	}
	// Her admin key is revoked with her (issue 9, item 6).
	doraKey := decodeKey(t, c.ok("keys", "create", "--config", cfgPath, "--name", "dora-admin", "--type", "admin", "--scopes", "*",
		"--created-by", doraID, "--json"))
	if doraKey.MintedBy != "cli" || doraKey.CreatedBy != doraID {
		t.Errorf("keys create --config: minted_by %q, created_by %q", doraKey.MintedBy, doraKey.CreatedBy)
	}
	if out := c.ok("users", "delete", "dora@example.com", "--config", cfgPath); out != "deleted "+doraID+" (dora@example.com)\n" {
		t.Errorf("delete --config: got %q", out)
	}
	if k := decodeKey(t, c.ok("keys", "show", doraKey.ID, "--config", cfgPath, "--json")); k.Status != "revoked" {
		t.Errorf("dora's admin key after users delete --config: status %s, want revoked", k.Status)
	}
	if got := c.apiErr("users", "show", doraID, "--config", cfgPath); got != "not_found" {
		t.Errorf("show --config after delete: got %q, want not_found", got)
	}
	if got := c.apiErr("users", "show", "me", "--config", cfgPath); got != "invalid_request" {
		t.Errorf("show me --config: got %q, want invalid_request", got)
	}
}

// TestUsersDirectRefusesMemoryStore: a memory store lives in the gateway process only.
func TestUsersDirectRefusesMemoryStore(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, "store: {type: memory}\n")
	c := cli{t: t, env: map[string]string{}}
	if _, _, err := c.run("users", "list", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), "needs a redis store") {
		t.Errorf("list --config with a memory store: got %v, want an error naming redis", err)
	}
	if _, _, err := c.run("users", "list", "--config", cfgPath, "--addr", "http://x"); err == nil || !strings.Contains(err.Error(), "neither --addr nor --token") {
		t.Errorf("--config with --addr: got %v, want a refusal", err)
	}
}
