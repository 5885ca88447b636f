package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWaitReplicas: store.redis.wait_replicas defaults to auto with 100ms, and its bounds
// are checked (the timeout must stay below read_timeout, or the socket read gives up
// before WAIT answers).
func TestWaitReplicas(t *testing.T) {
	d := Default().Store.Redis.WaitReplicas
	if d.Replicas != -1 || d.Timeout != 100*time.Millisecond {
		t.Errorf("default wait_replicas = %+v, want {-1 100ms}", d)
	}
	getenv := func(string) string { return "" }
	ok := "store:\n  type: redis\n  redis: {wait_replicas: {replicas: 1, timeout: 50ms}}\n"
	c, err := Parse("x.yaml", []byte(ok), getenv)
	if err != nil {
		t.Fatalf("valid wait_replicas refused: %v", err)
	}
	if w := c.Store.Redis.WaitReplicas; w.Replicas != 1 || w.Timeout != 50*time.Millisecond {
		t.Errorf("parsed %+v", w)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"{replicas: -2}", "store.redis.wait_replicas.replicas"},
		{"{replicas: 17}", "store.redis.wait_replicas.replicas"},
		{"{timeout: 0s}", "store.redis.wait_replicas.timeout"},
		{"{timeout: 200ms}", "store.redis.wait_replicas.timeout"}, // read_timeout is 200ms
	} {
		_, err := Parse("x.yaml", []byte("store:\n  type: redis\n  redis: {wait_replicas: "+tt.yaml+"}\n"), getenv)
		lines := problemLines(t, err)
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, tt.want) }) {
			t.Errorf("%s: problems %q, want one about %s", tt.yaml, lines, tt.want)
		}
	}
}
