//go:build cluster

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestSentinelDirectModeWaitsForReplica: the CLI's --config mode waits for a Redis
// replica after a revocation, as the management API does. With the replica hung, the
// revocation is not claimed: the command fails with store_unavailable (it can be run
// again); with the replica back, it succeeds. Key creation is refused the same way.
func TestSentinelDirectModeWaitsForReplica(t *testing.T) {
	s := redistest.StartSentinel(t)
	_, replica := s.Primary(t)
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`store:
  type: redis
  redis: {addrs: ["%s"], master_name: %q, key_prefix: "kt:"}
`, strings.Join(s.Addrs(), `", "`), redistest.SentinelMaster))
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir()}}
	id := fields(c.ok("keys", "create", "--config", cfgPath, "--name", "one", "--scopes", "reports:read"))["id"]
	if id == "" {
		t.Fatal("create --config printed no id")
	}

	replica.Pause(t)
	if code := c.apiErr("keys", "revoke", id, "--config", cfgPath); code != "store_unavailable" {
		t.Errorf("revoke with the replica hung: %s, want store_unavailable", code)
	}
	if code := c.apiErr("keys", "create", "--config", cfgPath, "--name", "two", "--scopes", "reports:read"); code != "store_unavailable" {
		t.Errorf("create with the replica hung: %s, want store_unavailable", code)
	}
	replica.Resume(t)

	if f := fields(c.ok("keys", "revoke", id, "--config", cfgPath)); f["status"] != "revoked" {
		t.Errorf("revoke with the replica back: got %v", f)
	}
	if out := c.ok("keys", "list", "--config", cfgPath, "--status", "active"); strings.Contains(out, "two") {
		t.Errorf("the unconfirmed creation left an active key:\n%s", out)
	}
}
