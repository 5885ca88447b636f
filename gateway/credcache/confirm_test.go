package credcache

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/store"
)

// slowTarget applies invalidations only after a pause, like a replica whose CPU is busy.
type slowTarget struct {
	target
	pause time.Duration
}

func (s slowTarget) Invalidate(tag string) int {
	time.Sleep(s.pause)
	return s.target.Invalidate(tag)
}

// TestPublishWaitsForEveryReplica: Publish returns only once every other replica has
// applied the invalidation, so a request any replica gets after it returns cannot be
// served from a cached copy; even when a replica is slow to apply it.
func TestPublishWaitsForEveryReplica(t *testing.T) {
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 50 * time.Millisecond}
	a := startReplica(t, st, opts, iopts)
	// b applies each invalidation 30ms late (well within the 400ms bound of the wait with
	// these 50ms heartbeats, even on a loaded machine).
	b := startReplicaWrapped(t, st, opts, iopts, func(c target) target { return slowTarget{c, 30 * time.Millisecond} })
	c := startReplica(t, st, opts, iopts)
	waitPeers(t, a, 2)

	for i := range 5 {
		tag := "key:" + string(rune('a'+i))
		for _, r := range []*replica{b, c} {
			r.cache.Put(hashN(i), "v", tag)
		}
		if err := a.inv.Publish(context.Background(), tag); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for name, r := range map[string]*replica{"b (slow)": b, "c": c} {
			if _, res := r.cache.Get(hashN(i)); res != Miss {
				t.Fatalf("invalidation %d: replica %s still has the entry (%s) after Publish returned", i, name, res)
			}
		}
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0: every replica confirmed", n)
	}
}

// TestPublishStopsWaitingForSilentReplica: a replica that was heard from and then went
// silent (it crashed, or lost the store) is waited for only until it has been silent
// for the trust window and a heartbeat; the give-up is counted.
func TestPublishStopsWaitingForSilentReplica(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	ghost := fakePeer(t, st, "ghost")
	ghost.beat(3)
	waitPeers(t, a, 1)

	publishGivingUpOnOne(t, a)
}

// TestPublishBoundedWhenReplicaNeverConfirms: a replica that keeps beating but never
// confirms (a bug, or its confirmations are lost) holds Publish for two trust windows at
// most.
func TestPublishBoundedWhenReplicaNeverConfirms(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	mute := fakePeer(t, st, "mute")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			mute.beat(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	waitPeers(t, a, 1)

	publishGivingUpOnOne(t, a)
}

// publishGivingUpOnOne publishes on r, which must stop waiting (within 10s) for exactly
// one replica and count it.
func publishGivingUpOnOne(t *testing.T, r *replica) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.inv.Publish(context.Background(), "key:x") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still waiting after 10s for a replica that does not confirm")
	}
	if n := testutil.ToFloat64(r.m.Unconfirmed); n != 1 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 1", n)
	}
}

// TestUntrustedReplicaNotWaitedFor: a replica that hears nothing on the channel (its
// subscription is cut while its publishes still work) does not trust its cache, says so
// in its heartbeats, and is not waited for.
func TestUntrustedReplicaNotWaitedFor(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	deaf := fakePeer(t, st, "deaf")
	deaf.beat(2)
	waitPeers(t, a, 1)
	deaf.send(1, false)
	waitPeers(t, a, 0)
	if err := a.inv.Publish(context.Background(), "key:x"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0: the replica said it answers nothing from its cache", n)
	}
}

// TestHeartbeatsSayWhetherCacheTrusted: a replica's heartbeats offer confirmations only
// while its cache is trusted.
func TestHeartbeatsSayWhetherCacheTrusted(t *testing.T) {
	st := store.NewMemory(nil)
	sub, err := st.Subscribe(context.Background(), DefaultChannel)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	clock := newFakeClock()
	b := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute, Now: clock.Now}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	next := func() message {
		t.Helper()
		for {
			select {
			case raw := <-sub.C():
				var m message
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				if m.From == b.inv.id && m.Tag == "" && m.Ack == "" {
					return m
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no heartbeat within 5s")
			}
		}
	}
	if m := next(); !m.Acks {
		t.Fatalf("trusted replica's heartbeat: acks = false, want true")
	}
	// Stop b's Run: with the fake clock past the trust window, its cache lapses.
	b.stop()
	clock.Advance(time.Minute)
	if b.cache.Trusted() {
		t.Fatal("premise: cache still trusted")
	}
	if _, err := b.inv.send(context.Background(), message{}, false); err != nil {
		t.Fatal(err)
	}
	last := b.inv.seq // Run has stopped: nothing else sends
	for {
		if m := next(); m.Seq == last {
			if m.Acks {
				t.Fatalf("untrusted replica's heartbeat: acks = true, want false")
			}
			return
		}
	}
}

// TestStoppedReplicaSaysGoodbye: a replica that stops says so, and is not waited for.
func TestStoppedReplicaSaysGoodbye(t *testing.T) {
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 10 * time.Millisecond}
	a := startReplica(t, st, opts, iopts)
	b := startReplica(t, st, opts, iopts)
	waitPeers(t, a, 1)
	b.stop()
	// Before a's trust window could drop b as silent, b's goodbye removed it.
	if !waitFor(a.inv.window/2, func() bool { return peerCount(a) == 0 }) {
		t.Fatalf("a still waits for b (%d peers) after b stopped", peerCount(a))
	}
	if err := a.inv.Publish(context.Background(), "key:x"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0: b said goodbye", n)
	}
}

// TestLocalInvalidatorWaitsForNobody: on a process's own store nothing is confirmed or
// awaited.
func TestLocalInvalidatorWaitsForNobody(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond, Local: true})
	ghost := fakePeer(t, st, "ghost")
	ghost.beat(3)
	if err := a.inv.Publish(context.Background(), "key:x"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n := peerCount(a); n != 0 {
		t.Errorf("local invalidator tracks %d peers, want 0", n)
	}
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		from string
		seq  uint64
		ok   bool
	}{
		{"abc/12", "abc", 12, true},
		{ackOf(message{From: "x", Seq: 7}), "x", 7, true},
		{"", "", 0, false},
		{"/3", "", 0, false},
		{"abc", "", 0, false},
		{"abc/-1", "", 0, false},
		{"abc/x", "", 0, false},
	} {
		from, seq, ok := parseAck(tc.in)
		if ok != tc.ok || (ok && (from != tc.from || seq != tc.seq)) {
			t.Errorf("parseAck(%q) = %q, %d, %v; want %q, %d, %v", tc.in, from, seq, ok, tc.from, tc.seq, tc.ok)
		}
	}
}

// peer is a replica made of raw messages: it beats, and never confirms anything.
type peer struct {
	t   testing.TB
	st  store.Store
	id  string
	seq uint64
}

func fakePeer(t testing.TB, st store.Store, id string) *peer { return &peer{t: t, st: st, id: id} }

// beat publishes n heartbeats saying the peer confirms invalidations.
func (p *peer) beat(n int) { p.send(n, true) }

// send publishes n heartbeats, saying whether the peer confirms invalidations.
func (p *peer) send(n int, acks bool) {
	for range n {
		p.seq++
		raw, err := json.Marshal(message{At: time.Now().UnixNano(), From: p.id, Seq: p.seq, Acks: acks})
		if err != nil {
			p.t.Fatal(err)
		}
		if err := p.st.Publish(context.Background(), DefaultChannel, raw); err != nil {
			p.t.Errorf("publish: %v", err)
		}
	}
}

func peerCount(r *replica) int {
	r.inv.confirmMu.Lock()
	defer r.inv.confirmMu.Unlock()
	return len(r.inv.peers)
}

// waitPeers waits until r has heard n other replicas that confirm.
func waitPeers(t testing.TB, r *replica, n int) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return peerCount(r) == n }) {
		t.Fatalf("replica knows %d peers, want %d", peerCount(r), n)
	}
}

// TestAnnounceWaitsForReplicasAndIsNeverWaitedFor: a process without a cache (the CLI's
// direct mode) announces invalidations; it returns once every running replica applied
// them, and no replica ever starts waiting for it.
func TestAnnounceWaitsForReplicasAndIsNeverWaitedFor(t *testing.T) {
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 10 * time.Millisecond}
	b := startReplica(t, st, opts, iopts)
	c := startReplica(t, st, opts, iopts)
	waitPeers(t, b, 1)
	waitPeers(t, c, 1)
	for _, r := range []*replica{b, c} {
		r.cache.Put(hashN(1), "v1", "key:1")
		r.cache.Put(hashN(2), "v2", "key:2")
	}
	n, err := Announce(context.Background(), st, DefaultChannel, 50*time.Millisecond, "key:1", "key:2")
	if err != nil || n != 0 {
		t.Fatalf("Announce = %d, %v; want 0 unconfirmed, no error", n, err)
	}
	for name, r := range map[string]*replica{"b": b, "c": c} {
		for i := 1; i <= 2; i++ {
			if _, res := r.cache.Get(hashN(i)); res != Miss {
				t.Errorf("replica %s still has entry %d (%s) after Announce returned", name, i, res)
			}
		}
		if p := peerCount(r); p > 1 {
			t.Errorf("replica %s waits for %d peers, want 1 (the other replica, not the announcer)", name, p)
		}
	}
}
