package credcache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/store"
)

// stallTarget blocks Invalidate(blockTag) until release is closed, as a replica whose
// delivery stalls without a disconnect; on the first trustFor after the release it
// records, with probe, what the cache answers.
type stallTarget struct {
	target
	blockTag string
	release  chan struct{}
	released *atomic.Bool
	once     *sync.Once
	probe    func()
}

func (s stallTarget) Invalidate(tag string) int {
	if tag == s.blockTag {
		<-s.release
		s.released.Store(true)
	}
	return s.target.Invalidate(tag)
}

func (s stallTarget) trustFor(at time.Time, d time.Duration) {
	s.target.trustFor(at, d)
	if s.released.Load() {
		s.once.Do(s.probe)
	}
}

// TestTrustRegainedAfterStallReverifies: a replica whose delivery stalls for longer than
// the trust window stops trusting its cache (and is given up on, or not waited for); when
// the backlog drains, the first old message must not make its entries Hits again before
// the invalidations behind it are applied: trust returns with every entry re-verified.
func TestTrustRegainedAfterStallReverifies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		staleTTL time.Duration
	}{{"fail_closed", 0}, {"serve_cached", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory(nil)
			opts := Options{MaxEntries: 100, TTL: time.Minute, StaleTTL: tc.staleTTL}
			iopts := InvalidatorOptions{Heartbeat: 10 * time.Millisecond}
			a := startReplica(t, st, opts, iopts)
			release := make(chan struct{})
			var released atomic.Bool
			probed := make(chan Result, 1)
			var b *replica
			b = startReplicaWrapped(t, st, opts, iopts, func(c target) target {
				return stallTarget{target: c, blockTag: "key:block", release: release, released: &released, once: &sync.Once{},
					probe: func() { _, res := b.cache.Get(hashOf("k")); probed <- res }}
			})
			waitPeers(t, a, 1)
			b.cache.Put(hashOf("k"), "v", "key:k")
			publishDone(t, startPublish(a, "key:block")) // b stalls applying it, past its trust window
			publishDone(t, startPublish(a, "key:k"))     // answered without b
			close(release)
			select {
			case res := <-probed:
				if res == Hit {
					t.Errorf("b trusted its cache again with the invalidated entry a Hit, before applying the invalidation")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("b never trusted its cache again")
			}
		})
	}
}

// deliverThenFail delivers the next invalidation it is given but reports an error, like
// a Redis command whose reply timed out after the server ran it.
type deliverThenFail struct {
	store.Store
	fail atomic.Bool
}

func (s *deliverThenFail) Publish(ctx context.Context, ch string, msg []byte) error {
	err := s.Store.Publish(ctx, ch, msg)
	if err == nil && bytes.Contains(msg, []byte(`"tag":`)) && s.fail.CompareAndSwap(true, false) {
		return errors.New("read timeout")
	}
	return err
}

// TestConfirmedPublishIsNoError: an invalidation every replica confirmed was delivered,
// whatever the store client said of the publish.
func TestConfirmedPublishIsNoError(t *testing.T) {
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 200 * time.Millisecond}
	ds := &deliverThenFail{Store: st}
	a := startReplica(t, ds, opts, iopts)
	startReplica(t, st, opts, iopts)
	waitPeers(t, a, 1)
	ds.fail.Store(true)
	if err := a.inv.Publish(context.Background(), "key:x"); err != nil {
		t.Errorf("Publish = %v though every replica confirmed it", err)
	}
}

// TestCancelledWaitCounted: a caller that stops waiting (its request ended) learns that
// replicas had not confirmed, and they are counted.
func TestCancelledWaitCounted(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 50 * time.Millisecond})
	fakePeer(t, st, "never-confirms").keepBeating(10 * time.Millisecond)
	waitPeers(t, a, 1)
	pctx, pcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer pcancel()
	if err := a.inv.Publish(pctx, "key:x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish = %v, want the context's error: a replica had not confirmed", err)
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 1 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 1", n)
	}
}

// echoStore publishes, before each invalidation from its replica, what before returns:
// a message another replica sent just before the invalidation.
type echoStore struct {
	store.Store
	before func() []byte
}

func (s *echoStore) Publish(ctx context.Context, ch string, msg []byte) error {
	if bytes.Contains(msg, []byte(`"tag":`)) && !bytes.Contains(msg, []byte(`"re":true`)) {
		if err := s.Store.Publish(ctx, ch, s.before()); err != nil {
			return err
		}
	}
	return s.Store.Publish(ctx, ch, msg)
}

// TestNotConfirmingSaidBeforePublishKeepsWait: a replica that said "I do not confirm" (its
// cache lapsed) before an invalidation was published may have trusted its cache again by
// the time the invalidation reached it, so that message does not end the wait for it; the
// same said after the invalidation (heard after its echo) does.
func TestNotConfirmingSaidBeforePublishKeepsWait(t *testing.T) {
	st := store.NewMemory(nil)
	b := fakePeer(t, st, "b")
	var seq atomic.Uint64
	seq.Store(1000)                  // its own numbers: b's heartbeats are sent from the test goroutine
	notConfirming := func() []byte { // called by a's Publish
		raw, err := json.Marshal(message{At: time.Now().UnixNano(), From: b.id, Seq: seq.Add(1)})
		if err != nil {
			t.Error(err)
		}
		return raw
	}
	es := &echoStore{Store: st, before: notConfirming}
	a := startReplica(t, es, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 250 * time.Millisecond})
	b.beat(1)
	waitPeers(t, a, 1)
	done := startPublish(a, "key:x")
	select {
	case err := <-done:
		t.Fatalf("Publish returned (%v) on b's message sent before the invalidation", err)
	case <-time.After(100 * time.Millisecond):
	}
	b.send(1, false) // after the invalidation's echo
	publishDone(t, done)
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0: b said it answers nothing from its cache", n)
	}
}

// TestTrustNeedsOwnConfirmingMessageHeardBack: a replica that said it does not confirm
// invalidations (its cache lapsed), or whose message saying so never reached the store,
// trusts its cache again only once it hears back a message of its own that says it
// confirms: other replicas heard that message too and wait for it from then on, and
// every invalidation published before it has been applied. Neither another replica's
// message nor its own "not confirming" one brings trust back; and trust returns with the
// entries cached before the lapse re-verified.
func TestTrustNeedsOwnConfirmingMessageHeardBack(t *testing.T) {
	for _, sent := range []bool{true, false} {
		t.Run(map[bool]string{true: "said", false: "unsent"}[sent], func(t *testing.T) {
			cs := &cutStore{Store: store.NewMemory(nil)}
			clock := newFakeClock()
			c := newCache(t, Options{MaxEntries: 10, TTL: time.Hour, Now: clock.Now})
			inv, err := NewInvalidator(c, cs, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			trustNow(t, inv)
			c.Put(hashOf("k"), "v", "key:k")
			clock.Advance(time.Minute) // the trust window lapses: nothing heard
			cs.mu.Lock()
			cs.mute = !sent
			cs.mu.Unlock()
			_, err = inv.send(context.Background(), message{}, false)
			if (err == nil) != sent {
				t.Fatalf("premise: send = %v", err)
			}
			said := inv.seq.Load()
			hear := func(m message) {
				t.Helper()
				raw, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				inv.apply(raw)
			}
			hear(message{From: "other", Seq: 1, Acks: true})
			if c.Trusted() {
				t.Fatal("trusted again on another replica's message")
			}
			if sent {
				hear(message{From: inv.id, Seq: said}) // its own "not confirming", heard back
				if c.Trusted() {
					t.Fatal("trusted again on its own message saying it does not confirm")
				}
			}
			cs.heal()
			hearOwn(t, inv) // hearing the channel now, it says it confirms
			if !c.Trusted() {
				t.Fatal("not trusted after hearing back its own message saying it confirms")
			}
			if _, res := c.Get(hashOf("k")); res == Hit {
				t.Error("an entry cached before the lapse is a Hit: it may have missed invalidations")
			}
		})
	}
}

// TestResentInvalidationIsNotAGap: a resent invalidation carries its first sequence
// number; it is applied and confirmed, and the receiver does not read it as a lost
// message (which would flush its cache).
func TestResentInvalidationIsNotAGap(t *testing.T) {
	st := store.NewMemory(nil)
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Hour})
	inv, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	trustNow(t, inv)
	raw := func(m message) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Subscribed (again): nothing heard from p yet. Its resent invalidation arrives
	// first, then its next message, numbered well past the resent one.
	c.Put(hashOf("k"), "v", "key:k")
	c.Put(hashOf("j"), "v", "key:j")
	inv.apply(raw(message{From: "p", Seq: 3, Tag: "key:k", Re: true, To: []string{inv.id}}))
	inv.apply(raw(message{From: "p", Seq: 7, Acks: true}))
	if _, res := c.Get(hashOf("k")); res != Miss {
		t.Errorf("resent invalidation not applied: entry %s", res)
	}
	if _, res := c.Get(hashOf("j")); res != Hit {
		t.Errorf("other entry %s after a resent invalidation, want Hit: read as a lost message", res)
	}
	select {
	case ack := <-inv.acks:
		if ack != "p/3" {
			t.Errorf("confirmation %q, want p/3", ack)
		}
	default:
		t.Error("resent invalidation not confirmed")
	}
}

// TestDeafServeCachedReplicaWaitedFor: a serve_cached replica that has heard nothing for
// longer than its trust window (its cache untrusted, its stale entries still a fallback)
// is still waited for, and gets the invalidation once it hears the channel again.
func TestDeafServeCachedReplicaWaitedFor(t *testing.T) {
	st := store.NewMemory(nil)
	iopts := InvalidatorOptions{Heartbeat: maxHeartbeat}
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Hour, StaleTTL: 2 * time.Hour}, iopts)
	clock := newFakeClock()
	cs := &cutStore{Store: st}
	b := startReplica(t, cs, Options{MaxEntries: 100, TTL: time.Hour, StaleTTL: 2 * time.Hour, Now: clock.Now}, iopts)
	waitPeers(t, a, 1)
	b.cache.Put(hashOf("k"), "v", "key:k")
	cs.sever(t, false) // b hears nothing; its heartbeats still go out
	clock.Advance(time.Minute)
	if b.cache.Trusted() {
		t.Fatal("premise: b's cache still trusted")
	}
	done := startPublish(a, "key:k")
	time.Sleep(300 * time.Millisecond) // b's heartbeats, saying it is untrusted, reach a
	cs.heal()
	publishDone(t, done)
	if _, res := b.cache.Get(hashOf("k")); res != Miss {
		t.Errorf("after Publish returned, b's entry is %s, want Miss", res)
	}
	if n := testutil.ToFloat64(a.m.Unconfirmed); n != 0 {
		t.Errorf("authgate_invalidation_unconfirmed_total = %v, want 0", n)
	}
}

// TestTrustBackOnlyWhenPeersWait: a fail_closed replica whose trust lapsed (it said it
// does not confirm, so publishers stopped waiting for it) must not trust its cache again
// before the others wait for it once more. Here its Run is the test, behind: it catches
// up to its own messages, caches a key, and an invalidation of that key is published
// that it has not applied. Publish may return only having waited for it (it is counted
// when given up on), never with nothing unconfirmed while the entry is a Hit there.
func TestTrustBackOnlyWhenPeersWait(t *testing.T) {
	st := store.NewMemory(nil)
	a := startReplica(t, st, Options{MaxEntries: 100, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 50 * time.Millisecond})
	clock := newFakeClock()
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Hour, Now: clock.Now})
	b, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := st.Subscribe(context.Background(), DefaultChannel)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// catchUp applies what b's subscription delivered, up to b's own message seq.
	catchUp := func(seq uint64) {
		t.Helper()
		for {
			select {
			case raw := <-sub.C():
				b.apply(raw)
				var m message
				if json.Unmarshal(raw, &m) == nil && m.From == b.id && m.Seq == seq {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("b's message %d not heard back within 5s", seq)
			}
		}
	}
	b.regate()    // subscribed
	for range 2 { // b's first message; then, hearing, one saying it confirms
		if _, err := b.send(context.Background(), message{}, false); err != nil {
			t.Fatal(err)
		}
		catchUp(b.seq.Load())
	}
	waitPeers(t, a, 1)

	clock.Advance(time.Minute) // b's delivery stalled: trust lapsed
	for range 2 {
		if _, err := b.send(context.Background(), message{}, false); err != nil {
			t.Fatal(err)
		}
		catchUp(b.seq.Load())
	}
	if c.Trusted() {
		c.Put(hashOf("k"), "v", "key:k") // read from the store after trust came back
	}
	if err := a.inv.Publish(context.Background(), "key:k"); err != nil {
		t.Fatal(err)
	}
	if _, res := c.Get(hashOf("k")); res == Hit && testutil.ToFloat64(a.m.Unconfirmed) == 0 {
		t.Error("Publish returned, nothing unconfirmed, while b serves the invalidated entry as a Hit")
	}
}
