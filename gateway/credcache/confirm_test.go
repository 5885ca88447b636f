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
	fakePeer(t, st, "mute").keepBeating(5 * time.Millisecond)
	waitPeers(t, a, 1)

	publishGivingUpOnOne(t, a)
}

// publishGivingUpOnOne publishes on r, which must stop waiting (within 10s) for exactly
// one replica and count it.
func publishGivingUpOnOne(t *testing.T, r *replica) {
	t.Helper()
	publishDone(t, startPublish(r, "key:x"))
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

// TestHeartbeatsSayWhetherCacheTrusted: a replica's heartbeats offer confirmations while
// its cache is trusted; once it is not (the replica hears nothing), only if the replica
// may still answer from stale entries (serve_cached), since then it may serve the very
// entry an invalidation is about. A fail_closed replica answers nothing from an untrusted
// cache and is not waited for.
func TestHeartbeatsSayWhetherCacheTrusted(t *testing.T) {
	for _, tc := range []struct {
		name          string
		staleTTL      time.Duration
		untrustedAcks bool
	}{
		{"fail_closed", 0, false},
		{"serve_cached", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory(nil)
			sub, err := st.Subscribe(context.Background(), DefaultChannel)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			clock := newFakeClock()
			b := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute, StaleTTL: tc.staleTTL, Now: clock.Now},
				InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
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
			last := b.inv.seq.Load() // Run has stopped: nothing else sends
			for {
				if m := next(); m.Seq == last {
					if m.Acks != tc.untrustedAcks {
						t.Fatalf("untrusted replica's heartbeat: acks = %v, want %v", m.Acks, tc.untrustedAcks)
					}
					return
				}
			}
		})
	}
}

// TestMissedInvalidationResentUntilConfirmed: a serve_cached replica whose subscription
// is cut while an invalidation is published (as in a Redis failover) misses it; the
// publisher sends it again until that replica, subscribed again, applies and confirms
// it. Once Publish returns, the replica holds no copy of the entry, not even a stale one
// that it could serve while it cannot read the store.
func TestMissedInvalidationResentUntilConfirmed(t *testing.T) {
	st := store.NewMemory(nil)
	// The default heartbeat: a trust window of 1s, so Publish's bound (2s) is far from the
	// ~0.5s the cut replica takes to hear the channel again.
	opts := Options{MaxEntries: 100, TTL: time.Minute, StaleTTL: time.Hour}
	iopts := InvalidatorOptions{Heartbeat: maxHeartbeat}
	a := startReplica(t, st, opts, iopts)
	cs := &cutStore{Store: st}
	b := startReplica(t, cs, opts, iopts)
	waitPeers(t, a, 1)
	b.cache.Put(hashOf("k"), "v", "key:k")

	cs.sever(t, false) // b hears nothing; its heartbeats still go out
	done := startPublish(a, "key:k")
	time.Sleep(100 * time.Millisecond)
	if _, res := b.cache.Get(hashOf("k")); res != Hit {
		t.Fatalf("premise: b, cut off, got the invalidation (entry %s)", res)
	}
	cs.heal()
	publishDone(t, done)
	if _, res := b.cache.Get(hashOf("k")); res != Miss {
		t.Errorf("after Publish returned, b's entry is %s, want Miss: a stale copy is served while the store does not answer", res)
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0: b confirmed the resent invalidation", n)
	}
}

// startPublish publishes an invalidation of tag on r in the background; its result
// arrives on the channel returned.
func startPublish(r *replica, tag string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.inv.Publish(context.Background(), tag) }()
	return done
}

// publishDone waits (10s at most) for a Publish started by startPublish, which must
// succeed.
func publishDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still waiting after 10s")
	}
}

// TestFailedPublishRetried: when the store refuses an invalidation's first publish (a
// failover under way), Publish sends it again until the replicas confirm it, rather than
// leave them serving what they cached.
func TestFailedPublishRetried(t *testing.T) {
	a, b, cs := failingPublisher(t, 50*time.Millisecond, 2)
	b.cache.Put(hashOf("k"), "v", "key:k")
	if err := a.inv.Publish(context.Background(), "key:k"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if _, res := b.cache.Get(hashOf("k")); res != Miss {
		t.Errorf("after Publish returned, b's entry is %s, want Miss", res)
	}
	if n := cs.failsLeft(); n != 0 {
		t.Errorf("premise: %d of the refused publishes were not tried", n)
	}
}

// TestPublishErrorWhenNeverSent: an invalidation the store never takes is an error, after
// the bound.
func TestPublishErrorWhenNeverSent(t *testing.T) {
	a, _, _ := failingPublisher(t, 10*time.Millisecond, 1<<30)
	if err := a.inv.Publish(context.Background(), "key:k"); err == nil {
		t.Fatal("Publish = nil for an invalidation the store never took")
	}
}

// failingPublisher starts two serve_cached replicas that hear each other: a, whose store
// refuses its next fails publishes of invalidations, and b.
func failingPublisher(t *testing.T, heartbeat time.Duration, fails int) (a, b *replica, cs *cutStore) {
	t.Helper()
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute, StaleTTL: time.Hour}
	iopts := InvalidatorOptions{Heartbeat: heartbeat}
	cs = &cutStore{Store: st}
	a = startReplica(t, cs, opts, iopts)
	b = startReplica(t, st, opts, iopts)
	waitPeers(t, a, 1)
	cs.mu.Lock()
	cs.failTags = fails
	cs.mu.Unlock()
	return a, b, cs
}

// TestDeafReplicaKeepsCountingItsPeers: silence is counted only while a replica hears the
// channel. One whose own subscription was cut cannot tell that the others went silent,
// so once it hears again it still waits for them (until they stay silent for the window
// while it listens); before, it would have answered revocations at once after a failover.
func TestDeafReplicaKeepsCountingItsPeers(t *testing.T) {
	st := store.NewMemory(nil)
	clock := newFakeClock()
	cs := &cutStore{Store: st}
	a := startReplica(t, cs, Options{MaxEntries: 100, TTL: time.Minute, Now: clock.Now}, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	b := fakePeer(t, st, "b")
	b.beat(1)
	waitPeers(t, a, 1)

	cs.sever(t, true)
	clock.Advance(time.Hour)
	if n := a.inv.Peers(); n != 1 {
		t.Fatalf("deaf for an hour: Peers = %d, want 1 (it cannot tell b went silent)", n)
	}
	cs.heal()
	if !waitFor(5*time.Second, a.cache.Trusted) {
		t.Fatal("a did not subscribe again within 5s")
	}
	if n := a.inv.Peers(); n != 1 {
		t.Fatalf("subscribed again: Peers = %d, want 1", n)
	}
	// Hearing again (its own heartbeats), a counts b's silence from now on. The clock moves
	// in steps shorter than the trust window, each heard (a jump would look like a silent
	// subscription, and a resubscription rightly counts b as heard again).
	for range 10 {
		clock.Advance(a.inv.window / 2)
		now := clock.Now()
		if !waitFor(5*time.Second, func() bool {
			a.inv.confirmMu.Lock()
			defer a.inv.confirmMu.Unlock()
			return !a.inv.lastHeard.Before(now)
		}) {
			t.Fatal("a heard nothing within 5s")
		}
	}
	if n := a.inv.Peers(); n != 0 {
		t.Fatalf("b silent for %s while a hears: Peers = %d, want 0", 5*a.inv.window, n)
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

// keepBeating sends a heartbeat every interval until the test ends.
func (p *peer) keepBeating(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			p.beat(1)
			time.Sleep(interval)
		}
	})
	p.t.Cleanup(func() { cancel(); wg.Wait() })
}

// peerCount is how many other replicas r has heard saying they confirm invalidations.
func peerCount(r *replica) int {
	r.inv.confirmMu.Lock()
	defer r.inv.confirmMu.Unlock()
	n := 0
	for _, p := range r.inv.peers {
		if p.acks {
			n++
		}
	}
	return n
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
