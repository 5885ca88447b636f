//go:build cluster

package redistest_test

import (
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestStartCluster: a 3+3 cluster forms, serves a key through a cluster client, and a
// CLUSTER FAILOVER and a killed primary each promote a replica that then serves it.
func TestStartCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	cc := c.Client(t)
	if err := cc.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	p, reps := c.PrimaryFor(t, "k")
	if len(reps) != 1 {
		t.Fatalf("primary %s has %d replicas, want 1", p.Addr(), len(reps))
	}
	c.Failover(t, reps[0])
	if p2, _ := c.PrimaryFor(t, "k"); p2 != reps[0] {
		t.Fatalf("after CLUSTER FAILOVER the primary is %s, want %s", p2.Addr(), reps[0].Addr())
	}
	killed, promoted := c.KillPrimaryFor(t, "k")
	if killed != reps[0] || promoted != p {
		t.Fatalf("killed %s promoted %s, want %s then %s", killed.Addr(), promoted.Addr(), reps[0].Addr(), p.Addr())
	}
	if v, err := cc.Get(t.Context(), "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after failover: %q %v", v, err)
	}
}

// TestStartSentinel: the sentinel set forms, and killing the primary promotes the replica,
// which keeps the data.
func TestStartSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	rc := st.Client(t)
	if err := rc.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := rc.Do(t.Context(), "WAIT", 1, 1000).Err(); err != nil {
		t.Fatalf("WAIT: %v", err)
	}
	p, r := st.Primary(t)
	killed, promoted := st.KillPrimary(t)
	if killed != p || promoted != r {
		t.Fatalf("killed %s promoted %s", killed.Addr(), promoted.Addr())
	}
	if v, err := rc.Get(t.Context(), "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after failover: %q %v", v, err)
	}
}

// TestSlot: the CRC16 slot function agrees with the server's CLUSTER KEYSLOT.
func TestSlot(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 0).Client(t)
	for _, key := range []string{"foo", "bar", "{user1000}.following", "foo{}{bar}", "a{b}c", "{}x", "authgate:{apikeys}:ids", "x{y"} {
		want, err := rc.Do(t.Context(), "CLUSTER", "KEYSLOT", key).Int()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT: %v", err)
		}
		if got := redistest.Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}
