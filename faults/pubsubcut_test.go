//go:build faults

package faults

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestPubSubCutToxic checks the pubsub_cut toxic against a real redis-server: through one
// proxy, a subscriber stops receiving while the cut is on (its connection kept: Redis still
// counts it) and receives again after it, commands on another connection of the same proxy
// keep working throughout, and a subscription opened during the cut (a new flow) delivers.
func TestPubSubCutToxic(t *testing.T) {
	r := redistest.StartPersistent(t)
	rp := newRedisProxy(t, "toxic-test", r.Addr())
	ctx := t.Context()

	opts := &redis.Options{Addr: rp.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
	sub := redis.NewClient(opts)
	defer sub.Close()
	cmds := redis.NewClient(opts)
	defer cmds.Close()
	direct := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer direct.Close()

	subscribe := func(ch string) *redis.PubSub {
		t.Helper()
		ps := sub.Subscribe(ctx, ch)
		if _, err := ps.ReceiveTimeout(ctx, 2*time.Second); err != nil { // the confirmation
			t.Fatalf("subscribe %s: %v", ch, err)
		}
		return ps
	}
	// receives publishes payload on ch directly and reports whether ps gets it within d.
	// ReceiveTimeout (unlike a context deadline) keeps the connection on a timeout.
	receives := func(ps *redis.PubSub, ch, payload string, d time.Duration) bool {
		t.Helper()
		if err := direct.Publish(ctx, ch, payload).Err(); err != nil {
			t.Fatalf("publish: %v", err)
		}
		deadline := time.Now().Add(d)
		for left := d; left > 0; left = time.Until(deadline) {
			msg, err := ps.ReceiveTimeout(ctx, left)
			if err != nil {
				return false
			}
			if m, ok := msg.(*redis.Message); ok && m.Payload == payload {
				return true
			}
		}
		return false
	}
	command := func(val string) {
		t.Helper()
		if err := cmds.Set(ctx, "k", val, 0).Err(); err != nil {
			t.Fatalf("SET through the proxy: %v", err)
		}
		if got, err := cmds.Get(ctx, "k").Result(); err != nil || got != val {
			t.Fatalf("GET through the proxy: got %q, %v; want %q", got, err, val)
		}
	}
	subscribers := func(ch string) int64 {
		t.Helper()
		n, err := direct.PubSubNumSub(ctx, ch).Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		return n[ch]
	}

	ps := subscribe("ch")
	defer ps.Close()
	command("before")
	if !receives(ps, "ch", "m1", 2*time.Second) {
		t.Fatal("no message before the cut")
	}

	rp.cutPubSub(true)
	if receives(ps, "ch", "m2", 700*time.Millisecond) {
		t.Error("the subscriber received a message during the cut")
	}
	command("during")
	if n := subscribers("ch"); n != 1 {
		t.Errorf("during the cut Redis counts %d subscribers of ch, want 1 (the connection is kept)", n)
	}
	fresh := subscribe("fresh") // a new pub/sub connection during the cut
	defer fresh.Close()
	if !receives(fresh, "fresh", "f1", 2*time.Second) {
		t.Error("a subscription opened during the cut received nothing")
	}

	rp.cutPubSub(false)
	command("after")
	if !receives(ps, "ch", "m3", 2*time.Second) {
		t.Error("no message after the cut ended")
	}
}
