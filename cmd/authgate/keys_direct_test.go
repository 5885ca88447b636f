package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// directYAML is a gateway on srv's Redis with a hash pepper, so that the CLI and the
// gateway must agree on the key layout and on the hashing.
func directYAML(addr string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store:
  type: redis
  redis: {addrs: [%q], key_prefix: "kt:"}
api_keys:
  hash_pepper: "${PEPPER}"
`, addr)
}

// TestKeysDirect: a key created with --config is accepted by a gateway on the same
// Redis, and revoking it with --config makes the running gateway refuse it as soon as
// the command returns, although the gateway had it cached.
func TestKeysDirect(t *testing.T) {
	srv := redistest.Start(t)
	yaml := directYAML(srv.Addr())
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, yaml)
	const pepper = "a-pepper-only-the-gateway-and-cli-know"
	c := cli{t: t, env: map[string]string{"PEPPER": pepper, "HOME": t.TempDir()}}

	// The first admin key, with the gateway down.
	out := c.ok("keys", "create", "--config", cfgPath, "--name", "first-admin", "--type", "admin", "--scopes", "*",
		"--created-by", "ops", "--expires-in", "0")
	f := fields(out)
	id, plain := f["id"], plainKeyRe.FindString(out)
	if !keyIDRe.MatchString(id) || plain == "" || f["type"] != "admin" || f["created by"] != "ops" || f["expires at"] != "never" {
		t.Fatalf("create --config: got\n%s", out)
	}

	base := startKeysGateway(t, strings.Replace(yaml, "${PEPPER}", pepper, 1))
	waitForKey(t, base, plain)
	remote := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": plain}}
	if k := decodeKey(t, remote.ok("keys", "show", id, "--json")); k.CreatedBy != "ops" || k.Name != "first-admin" {
		t.Errorf("show through the gateway: got %+v", k)
	}
	// A key made through the gateway is seen by direct mode.
	other := decodeKey(t, remote.ok("keys", "create", "--name", "made-remotely", "--json"))

	// list, show, edit, refresh, rotate, activity directly.
	p := decodePage(t, c.ok("keys", "list", "--config", cfgPath, "--json", "--sort", "name"))
	if got := pageIDs(p); len(got) != 2 || got[0] != id || got[1] != other.ID {
		t.Errorf("list --config: got %v, want [%s %s]", got, id, other.ID)
	}
	if out := c.ok("keys", "list", "--config", cfgPath, "--created-by", "ops"); !strings.Contains(out, id) {
		t.Errorf("list --config --created-by ops: got\n%s", out)
	}
	// Keys by name and substring search work on the Redis store too.
	if got := strings.TrimSpace(c.ok("keys", "show", "made-remotely", "--config", cfgPath, "-q")); got != other.ID {
		t.Errorf("show made-remotely --config: got %q, want %s", got, other.ID)
	}
	if got := strings.Fields(c.ok("keys", "list", "--config", cfgPath, "--search", "REMOTE", "-q")); len(got) != 1 || got[0] != other.ID {
		t.Errorf("list --search REMOTE --config: got %v, want [%s]", got, other.ID)
	}
	if out := c.ok("keys", "list", "--config", cfgPath, "--created-by", "nobody"); strings.TrimSpace(out) != "no keys" {
		t.Errorf("list --config --created-by nobody: got\n%s", out)
	}
	if f := fields(c.ok("keys", "edit", other.ID, "--config", cfgPath, "--description", "edited directly", "--rate-limit", "5/1s")); f["description"] != "edited directly" || f["rate limit"] != "5/1s" {
		t.Errorf("edit --config: got %v", f)
	}
	if k := decodeKey(t, remote.ok("keys", "show", other.ID, "--json")); k.Description != "edited directly" {
		t.Errorf("after edit --config the gateway shows description %q", k.Description)
	}
	if k := decodeKey(t, c.ok("keys", "refresh", other.ID, "--config", cfgPath, "--json")); k.Status != "active" || k.ExpiresAt == nil {
		t.Errorf("refresh --config: got %+v", k)
	}
	rot := decodeKey(t, c.ok("keys", "rotate", other.ID, "--config", cfgPath, "--json"))
	if rot.ID == other.ID || !strings.HasPrefix(rot.Secret, "sk_live_") {
		t.Errorf("rotate --config: got %+v", rot)
	}
	waitForKey(t, base, rot.Secret) // the rotated key works at the gateway: same hashing
	c.ok("keys", "activity", id, "--config", cfgPath)
	var ae *apiError
	if _, _, err := c.run("keys", "show", "--config", cfgPath, "key_00000000000000000000"); !errors.As(err, &ae) || ae.Code != "not_found" {
		t.Errorf("show --config unknown: got %v, want not_found", err)
	}

	// Revoke directly: the gateway, which has the key cached, confirms the invalidation
	// before the command returns, so it refuses the key at once.
	remote.ok("keys", "list") // cached now
	out = c.ok("keys", "revoke", id, "--config", cfgPath)
	if f := fields(out); f["status"] != "revoked" {
		t.Errorf("revoke --config: got\n%s", out)
	}
	if _, _, err := remote.run("keys", "list"); !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "revoked_api_key" {
		t.Fatalf("right after revoke --config the gateway answered %v, want 401 revoked_api_key", err)
	}
}

// TestKeysDirectRefusesMemoryStore: a memory store lives in the gateway process only.
func TestKeysDirectRefusesMemoryStore(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, "store: {type: memory}\n")
	c := cli{t: t, env: map[string]string{}}
	if _, _, err := c.run("keys", "list", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), "redis") {
		t.Errorf("list --config with a memory store: got %v, want an error naming redis", err)
	}
	if _, _, err := c.run("keys", "list", "--config", cfgPath, "--addr", "http://x"); err == nil {
		t.Error("--config with --addr: want an error")
	}
}
