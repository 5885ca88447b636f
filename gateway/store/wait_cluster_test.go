//go:build cluster

package store_test

import (
	"errors"
	"testing"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestClusterWaitReplicasAuto: on a Cluster with replicas, auto mode waits for one; a
// write to a slot whose replica hangs is ErrNotReplicated, another slot's is confirmed.
func TestClusterWaitReplicasAuto(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	r, err := store.NewRedis(store.RedisOptions{Addrs: c.Addrs(), KeyPrefix: "ag:", WaitReplicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ctx := t.Context()
	if err := r.Set(ctx, "{apikeys}:x", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReplicas(ctx, "{apikeys}:x", "{users}:recs", "revoked:jti:abc"); err != nil {
		t.Fatalf("WaitReplicas with every replica up: %v", err)
	}
	if n := r.WaitingFor(); n != 1 {
		t.Fatalf("WaitingFor = %d, want 1", n)
	}
	p, reps := c.PrimaryFor(t, "ag:{apikeys}:x")
	reps[0].Pause(t)
	err = r.WaitReplicas(ctx, "{apikeys}:x")
	if !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("WaitReplicas with the replica of %s hung: %v, want ErrNotReplicated", p.Addr(), err)
	}
	reps[0].Resume(t)
	if err := r.WaitReplicas(ctx, "{apikeys}:x"); err != nil {
		t.Errorf("WaitReplicas with the replica back: %v", err)
	}
}
