package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestReview13_DirectModeRespectsCaps: the CLI's direct mode applies
// api_keys.max_scopes_per_key (400 invalid_request) and api_keys.max_keys_per_owner
// (409 conflict) like the management API, and stores nothing past them.
func TestReview13_DirectModeRespectsCaps(t *testing.T) {
	srv := redistest.Start(t)
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`store:
  type: redis
  redis: {addrs: [%q], key_prefix: "kt:"}
api_keys: {max_scopes_per_key: 3, max_keys_per_owner: 2}
`, srv.Addr()))
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir()}}
	var ae *apiError
	if _, _, err := c.run("keys", "create", "--config", cfgPath, "--name", "wide", "--created-by", "ops",
		"--scopes", "a:read,b:read,c:read,d:read"); !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_request" {
		t.Fatalf("4 scopes over a cap of 3: got %v, want 400 invalid_request", err)
	}
	for i := range 2 {
		c.ok("keys", "create", "--config", cfgPath, "--name", fmt.Sprint("k", i), "--created-by", "ops", "--scopes", "a:read,b:read,c:read")
	}
	if _, _, err := c.run("keys", "create", "--config", cfgPath, "--name", "third", "--created-by", "ops",
		"--scopes", "a:read"); !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "conflict" {
		t.Fatalf("third key of ops over a cap of 2: got %v, want 409 conflict", err)
	}
	out := c.ok("keys", "list", "--config", cfgPath, "--created-by", "ops", "--json")
	if n := strings.Count(out, `"id"`); n != 2 {
		t.Fatalf("ops holds %d keys after the refusals, want 2:\n%s", n, out)
	}
	c.ok("keys", "create", "--config", cfgPath, "--name", "other-owner", "--created-by", "ci", "--scopes", "a:read")
}
