package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"

	"github.com/authgate/authgate/gateway/clocktest"
)

// waitBound bounds every wait in these tests: for a message, a reconnect,
// a key to expire.
const waitBound = 10 * time.Second

func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// fixture is one fresh, empty store under test.
type fixture struct {
	s store.Store
	// ttl is a TTL short enough to wait out, long enough that a key set
	// with it is certainly still there when read straight back.
	ttl time.Duration
	// expire returns once a key set with f.ttl has expired: the memory
	// store's clock is advanced, the Redis server is polled.
	expire func(t *testing.T, key string)
}

// backend is one implementation under test. setup runs once per
// backend, in the backend's own subtest (so a redis-server it starts lives
// until all of that backend's subtests are done), and returns a function
// that opens a fresh fixture per subtest.
type backend struct {
	name  string
	setup func(t *testing.T) (open func(t *testing.T) fixture)
}

// backends returns the memory store, and a Redis store on a real
// redis-server shared by the backend's subtests; each Redis fixture gets
// its own key prefix, so they do not see each other's keys.
func backends() []backend {
	return []backend{
		{
			name: "memory",
			setup: func(*testing.T) func(t *testing.T) fixture {
				return func(t *testing.T) fixture {
					clock := newFakeClock()
					m := store.NewMemory(clock.Now)
					t.Cleanup(func() { _ = m.Close() })
					return fixture{
						s:   m,
						ttl: time.Minute,
						expire: func(*testing.T, string) {
							clock.Advance(time.Minute)
						},
					}
				}
			},
		},
		{
			name: "redis",
			setup: func(t *testing.T) func(t *testing.T) fixture {
				srv := redistest.Start(t)
				raw := srv.Client(t)
				return func(t *testing.T) fixture {
					prefix := "test:" + t.Name() + ":"
					r := newRedis(t, srv.Addr(), prefix)
					return fixture{
						s: r,
						// Long enough that reading a key straight back
						// after setting it is not a race on a loaded CI
						// machine; the subtests run in parallel, so the
						// waits overlap.
						ttl: 2 * time.Second,
						expire: func(t *testing.T, key string) {
							t.Helper()
							eventually(t, "key "+key+" to expire", func(ctx context.Context) error {
								n, err := raw.Exists(ctx, prefix+key).Result()
								if err != nil {
									return err
								}
								if n != 0 {
									return fmt.Errorf("EXISTS %s = %d", prefix+key, n)
								}
								return nil
							})
						},
					}
				}
			},
		},
	}
}

// newRedis returns a Redis store on addr, closed when the test ends.
func newRedis(t testing.TB, addr, prefix string) *store.Redis {
	t.Helper()
	r, err := store.NewRedis(store.RedisOptions{
		Addrs:        []string{addr},
		KeyPrefix:    prefix,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// eventually calls check until it returns nil, failing the test if that
// does not happen within waitBound.
func eventually(t testing.TB, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", waitBound, what, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}

// receive returns the next message on sub, failing after waitBound.
func receive(t testing.TB, sub *store.Subscription) []byte {
	t.Helper()
	select {
	case msg, ok := <-sub.C():
		if !ok {
			t.Fatalf("subscription closed, want a message")
		}
		return msg
	case <-time.After(waitBound):
		t.Fatalf("no message within %s", waitBound)
		return nil
	}
}

// wantClosed fails unless sub.C() is closed within waitBound, after
// yielding no further message.
func wantClosed(t testing.TB, sub *store.Subscription) {
	t.Helper()
	select {
	case msg, ok := <-sub.C():
		if ok {
			t.Fatalf("got message %q, want channel closed", msg)
		}
	case <-time.After(waitBound):
		t.Fatalf("channel not closed within %s", waitBound)
	}
}

func mustGet(t testing.TB, s store.Store, key string) string {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(got)
}

func wantNotFound(t testing.TB, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func mustSet(t testing.TB, s store.Store, key, val string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte(val), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustIncr(t testing.TB, s store.Store, key string, ttl time.Duration, want int64) {
	t.Helper()
	got, err := s.Incr(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Incr(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("Incr(%q) = %d, want %d", key, got, want)
	}
}

func mustSetNX(t testing.TB, s store.Store, key, val string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.SetNX(t.Context(), key, []byte(val), ttl)
	if err != nil {
		t.Fatalf("SetNX(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("SetNX(%q) = %v, want %v", key, got, want)
	}
}

func mustSubscribe(t testing.TB, s store.Store, ctx context.Context, channel string) *store.Subscription {
	t.Helper()
	sub, err := s.Subscribe(ctx, channel)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func mustPublish(t testing.TB, s store.Store, channel, msg string) {
	t.Helper()
	if err := s.Publish(t.Context(), channel, []byte(msg)); err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
}

// TestContract runs the Store contract against every implementation.
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, f fixture)
	}{
		{"get missing", func(t *testing.T, f fixture) {
			wantNotFound(t, f.s, "nope")
		}},
		{"set get overwrite", func(t *testing.T, f fixture) {
			mustSet(t, f.s, "k", "v1", 0)
			if got := mustGet(t, f.s, "k"); got != "v1" {
				t.Fatalf("got %q, want %q", got, "v1")
			}
			mustSet(t, f.s, "k", "v2", 0)
			if got := mustGet(t, f.s, "k"); got != "v2" {
				t.Fatalf("got %q, want %q", got, "v2")
			}
		}},
		{"binary and empty values", func(t *testing.T, f fixture) {
			bin := []byte{0, 1, 0xff, '\r', '\n'}
			if err := f.s.Set(t.Context(), "bin", bin, 0); err != nil {
				t.Fatal(err)
			}
			got, err := f.s.Get(t.Context(), "bin")
			if err != nil || !bytes.Equal(got, bin) {
				t.Fatalf("got %v, %v; want %v", got, err, bin)
			}
			mustSet(t, f.s, "empty", "", 0)
			if got := mustGet(t, f.s, "empty"); got != "" {
				t.Fatalf("got %q, want empty", got)
			}
		}},
		{"stored value is a copy", func(t *testing.T, f fixture) {
			val := []byte("abc")
			if err := f.s.Set(t.Context(), "k", val, 0); err != nil {
				t.Fatal(err)
			}
			val[0] = 'X'
			got, err := f.s.Get(t.Context(), "k")
			if err != nil {
				t.Fatal(err)
			}
			got[1] = 'Y'
			if got := mustGet(t, f.s, "k"); got != "abc" {
				t.Fatalf("got %q, want %q", got, "abc")
			}
		}},
		{"set ttl expires, no ttl stays", func(t *testing.T, f fixture) {
			mustSet(t, f.s, "short", "v", f.ttl)
			mustSet(t, f.s, "forever", "v", 0)
			if got := mustGet(t, f.s, "short"); got != "v" {
				t.Fatalf("got %q before expiry, want %q", got, "v")
			}
			f.expire(t, "short")
			wantNotFound(t, f.s, "short")
			if got := mustGet(t, f.s, "forever"); got != "v" {
				t.Fatalf("ttl 0: got %q, want %q", got, "v")
			}
		}},
		{"set replaces ttl", func(t *testing.T, f fixture) {
			mustSet(t, f.s, "k", "v1", f.ttl)
			mustSet(t, f.s, "k", "v2", 0)
			mustSet(t, f.s, "marker", "m", f.ttl)
			f.expire(t, "marker")
			if got := mustGet(t, f.s, "k"); got != "v2" {
				t.Fatalf("got %q, want %q", got, "v2")
			}
		}},
		{"negative ttl is an error", func(t *testing.T, f fixture) {
			if err := f.s.Set(t.Context(), "k", []byte("v"), -time.Second); err == nil {
				t.Errorf("Set: got nil error, want one")
			}
			if _, err := f.s.SetNX(t.Context(), "k", []byte("v"), -time.Second); err == nil {
				t.Errorf("SetNX: got nil error, want one")
			}
			if _, err := f.s.Incr(t.Context(), "k", -time.Second); err == nil {
				t.Errorf("Incr: got nil error, want one")
			}
			wantNotFound(t, f.s, "k")
		}},
		{"setnx", func(t *testing.T, f fixture) {
			mustSetNX(t, f.s, "k", "first", 0, true)
			mustSetNX(t, f.s, "k", "second", 0, false)
			if got := mustGet(t, f.s, "k"); got != "first" {
				t.Fatalf("got %q, want %q", got, "first")
			}
			if err := f.s.Delete(t.Context(), "k"); err != nil {
				t.Fatal(err)
			}
			mustSetNX(t, f.s, "k", "third", 0, true)
		}},
		{"setnx ttl", func(t *testing.T, f fixture) {
			mustSetNX(t, f.s, "lock", "a", f.ttl, true)
			mustSetNX(t, f.s, "lock", "b", f.ttl, false)
			f.expire(t, "lock")
			wantNotFound(t, f.s, "lock")
			mustSetNX(t, f.s, "lock", "c", f.ttl, true)
		}},
		{"delete", func(t *testing.T, f fixture) {
			mustSet(t, f.s, "a", "1", 0)
			mustSet(t, f.s, "b", "2", 0)
			mustSet(t, f.s, "c", "3", 0)
			if err := f.s.Delete(t.Context(), "a", "b", "missing"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := f.s.Delete(t.Context()); err != nil {
				t.Fatalf("Delete(): %v", err)
			}
			wantNotFound(t, f.s, "a")
			wantNotFound(t, f.s, "b")
			if got := mustGet(t, f.s, "c"); got != "3" {
				t.Fatalf("got %q, want %q", got, "3")
			}
		}},
		{"incr", func(t *testing.T, f fixture) {
			mustIncr(t, f.s, "n", 0, 1)
			mustIncr(t, f.s, "n", 0, 2)
			mustIncr(t, f.s, "n", 0, 3)
			if got := mustGet(t, f.s, "n"); got != "3" {
				t.Fatalf("Get = %q, want %q", got, "3")
			}
			mustSet(t, f.s, "set", "41", 0)
			mustIncr(t, f.s, "set", 0, 42)
		}},
		{"incr not an integer", func(t *testing.T, f fixture) {
			mustSet(t, f.s, "s", "abc", 0)
			if n, err := f.s.Incr(t.Context(), "s", 0); err == nil {
				t.Fatalf("Incr = %d, nil; want an error", n)
			}
			if got := mustGet(t, f.s, "s"); got != "abc" {
				t.Fatalf("value changed to %q", got)
			}
		}},
		{"incr ttl only on create", func(t *testing.T, f fixture) {
			mustIncr(t, f.s, "n", f.ttl, 1)
			// A later ttl must not replace the first; if it did, the key
			// would outlive f.ttl and expire would time out.
			mustIncr(t, f.s, "n", time.Hour, 2)
			mustIncr(t, f.s, "n", 0, 3)
			f.expire(t, "n")
			wantNotFound(t, f.s, "n")
			mustIncr(t, f.s, "n", 0, 1)
		}},
		{"incr concurrent", func(t *testing.T, f fixture) {
			const workers, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for range each {
						if _, err := f.s.Incr(t.Context(), "n", time.Hour); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Incr: %v", err)
			}
			if got, want := mustGet(t, f.s, "n"), fmt.Sprint(workers*each); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}},
		{"publish subscribe", func(t *testing.T, f fixture) {
			a := mustSubscribe(t, f.s, t.Context(), "events")
			b := mustSubscribe(t, f.s, t.Context(), "events")
			other := mustSubscribe(t, f.s, t.Context(), "other")
			for _, m := range []string{"one", "two", "three"} {
				mustPublish(t, f.s, "events", m)
			}
			for _, sub := range []*store.Subscription{a, b} {
				for _, want := range []string{"one", "two", "three"} {
					if got := string(receive(t, sub)); got != want {
						t.Fatalf("got %q, want %q", got, want)
					}
				}
			}
			// "other" must have seen nothing of "events": publish a marker
			// on it and check that the marker is the first thing received.
			mustPublish(t, f.s, "other", "marker")
			if got := string(receive(t, other)); got != "marker" {
				t.Fatalf("other channel got %q, want %q", got, "marker")
			}
			select {
			case <-a.Reconnected():
				t.Fatalf("Reconnected fired without a reconnect")
			default:
			}
			if d := a.Dropped(); d != 0 {
				t.Fatalf("Dropped = %d, want 0", d)
			}
		}},
		{"publish without subscribers", func(t *testing.T, f fixture) {
			mustPublish(t, f.s, "nobody", "hello")
		}},
		{"subscription close", func(t *testing.T, f fixture) {
			sub := mustSubscribe(t, f.s, t.Context(), "events")
			if err := sub.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wantClosed(t, sub)
			if err := sub.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			mustPublish(t, f.s, "events", "after close")
		}},
		{"subscription ends with its context", func(t *testing.T, f fixture) {
			ctx, cancel := context.WithCancel(t.Context())
			sub := mustSubscribe(t, f.s, ctx, "events")
			mustPublish(t, f.s, "events", "before")
			if got := string(receive(t, sub)); got != "before" {
				t.Fatalf("got %q, want %q", got, "before")
			}
			cancel()
			wantClosed(t, sub)
		}},
		{"close", func(t *testing.T, f fixture) {
			sub := mustSubscribe(t, f.s, t.Context(), "events")
			if err := f.s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wantClosed(t, sub)
			if err := f.s.Ping(t.Context()); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Ping after Close = %v, want ErrClosed", err)
			}
			if _, err := f.s.Get(t.Context(), "k"); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Get after Close = %v, want ErrClosed", err)
			}
			if _, err := f.s.Subscribe(t.Context(), "events"); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
			}
		}},
		{"cancelled context", func(t *testing.T, f fixture) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := f.s.Set(ctx, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
				t.Fatalf("Set = %v, want context.Canceled", err)
			}
			if _, err := f.s.Subscribe(ctx, "events"); !errors.Is(err, context.Canceled) {
				t.Fatalf("Subscribe = %v, want context.Canceled", err)
			}
		}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.setup(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					f := open(t)
					if err := f.s.Ping(t.Context()); err != nil {
						t.Fatalf("Ping: %v", err)
					}
					tt.run(t, f)
				})
			}
		})
	}
}

// TestMemoryTTLBoundary checks that a memory key lives exactly ttl by the
// injected clock.
func TestMemoryTTLBoundary(t *testing.T) {
	clock := newFakeClock()
	m := store.NewMemory(clock.Now)
	defer m.Close()
	mustSet(t, m, "k", "v", 10*time.Second)
	mustIncr(t, m, "n", 10*time.Second, 1)
	clock.Advance(10*time.Second - time.Nanosecond)
	if got := mustGet(t, m, "k"); got != "v" {
		t.Fatalf("just before expiry: got %q, want %q", got, "v")
	}
	mustIncr(t, m, "n", 10*time.Second, 2)
	clock.Advance(time.Nanosecond)
	wantNotFound(t, m, "k")
	wantNotFound(t, m, "n")
}

// TestMemoryPublishNeverBlocks checks the fan-out bound: a subscriber that
// never reads costs dropped messages, not a blocked publisher.
func TestMemoryPublishNeverBlocks(t *testing.T) {
	m := store.NewMemory(nil)
	defer m.Close()
	slow := mustSubscribe(t, m, t.Context(), "events")

	const extra = 10
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range cap(slow.C()) + extra {
			if err := m.Publish(t.Context(), "events", []byte("m")); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatalf("Publish blocked on a full subscriber")
	}
	if got := slow.Dropped(); got != extra {
		t.Fatalf("Dropped = %d, want %d", got, extra)
	}
	select {
	case <-slow.Reconnected():
	default:
		t.Fatalf("Reconnected did not fire after messages were dropped")
	}
	if got := len(slow.C()); got != cap(slow.C()) {
		t.Fatalf("buffered %d, want %d", got, cap(slow.C()))
	}
}

// TestRedisKeyPrefix checks on the raw server that KeyPrefix is applied to
// keys and channels.
func TestRedisKeyPrefix(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	r := newRedis(t, srv.Addr(), "ag:")
	ctx := t.Context()

	mustSet(t, r, "k", "v", time.Minute)
	mustIncr(t, r, "n", 0, 1)
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(slices.Sorted(slices.Values(keys)), ","), "ag:k,ag:n"; got != want {
		t.Fatalf("KEYS * = %s, want %s", got, want)
	}
	if got := r.Key("k"); got != "ag:k" {
		t.Fatalf("Key(k) = %q, want %q", got, "ag:k")
	}
	pttl, err := raw.PTTL(ctx, "ag:k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 0 || pttl > time.Minute {
		t.Fatalf("PTTL ag:k = %s, want in (0, 1m]", pttl)
	}
	if err := r.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, "ag:k").Val(); n != 0 {
		t.Fatalf("EXISTS ag:k after Delete = %d, want 0", n)
	}

	// A raw value under the prefixed name is what the store reads.
	if err := raw.Set(ctx, "ag:raw", "from raw", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, r, "raw"); got != "from raw" {
		t.Fatalf("got %q, want %q", got, "from raw")
	}

	// Channels: the store subscribes to and publishes on "ag:events".
	sub := mustSubscribe(t, r, ctx, "events")
	chans, err := raw.PubSubChannels(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(chans, ","), "ag:events"; got != want {
		t.Fatalf("PUBSUB CHANNELS = %s, want %s", got, want)
	}
	if err := raw.Publish(ctx, "ag:events", "raw publish").Err(); err != nil {
		t.Fatal(err)
	}
	if got := string(receive(t, sub)); got != "raw publish" {
		t.Fatalf("got %q, want %q", got, "raw publish")
	}
	rawSub := raw.Subscribe(ctx, "ag:events")
	defer rawSub.Close()
	if _, err := rawSub.Receive(ctx); err != nil { // subscription confirmation
		t.Fatal(err)
	}
	mustPublish(t, r, "events", "store publish")
	msg, err := rawSub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Channel != "ag:events" || msg.Payload != "store publish" {
		t.Fatalf("raw got %q on %q, want %q on %q", msg.Payload, msg.Channel, "store publish", "ag:events")
	}
}

// TestRedisOutage stops and restarts redis-server under a live store: Ping
// fails promptly while it is down, and afterwards Ping succeeds, the
// subscription reports the reconnect, and messages flow again.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedis(t, srv.Addr(), "outage:")
	sub := mustSubscribe(t, r, t.Context(), "events")

	mustPublish(t, r, "events", "before")
	if got := string(receive(t, sub)); got != "before" {
		t.Fatalf("got %q, want %q", got, "before")
	}

	srv.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	err := r.Ping(ctx)
	cancel()
	if err == nil {
		t.Fatalf("Ping with redis stopped: got nil error")
	}
	t.Logf("Ping while down: %v", err)
	select {
	case <-sub.Reconnected():
		t.Fatalf("Reconnected fired while redis is down")
	default:
	}

	srv.Restart(t)
	eventually(t, "Ping after restart", r.Ping)
	select {
	case <-sub.Reconnected():
	case <-time.After(waitBound):
		t.Fatalf("no reconnect reported within %s", waitBound)
	}
	// Publish until one arrives: the store's pooled connections may still
	// be failing over to new ones.
	eventually(t, "a message after restart", func(ctx context.Context) error {
		if err := r.Publish(ctx, "events", []byte("after")); err != nil {
			return err
		}
		select {
		case msg, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription closed during outage")
			}
			if string(msg) != "after" {
				t.Fatalf("got %q, want %q", msg, "after")
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// TestRedisSubscribeUnreachable checks that NewRedis does not dial and that
// Ping and Subscribe fail, rather than hang, when nothing listens.
func TestRedisSubscribeUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	addr := srv.Addr()
	srv.Stop(t) // a loopback port that nothing listens on

	r := newRedis(t, addr, "")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err == nil {
		t.Fatalf("Ping: got nil error, want one")
	}
	if sub, err := r.Subscribe(ctx, "events"); err == nil {
		sub.Close()
		t.Fatalf("Subscribe: got nil error, want one")
	}
}

// TestRedisSubscribeBlackholed checks that Subscribe, with the server behind a partition
// that drops packets without a reset, gives up after one dial and one read timeout (2s
// here) instead of waiting for a confirmation forever: the caller's context lives as long
// as the subscription, so it cannot bound the wait.
func TestRedisSubscribeBlackholed(t *testing.T) {
	srv := redistest.Start(t)
	px := redistest.NewProxy(t, srv.Addr())
	r := newRedis(t, px.Addr(), "")
	if err := r.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	px.Blackhole(true)
	res := make(chan error, 1)
	go func() {
		sub, err := r.Subscribe(t.Context(), "events")
		if err == nil {
			sub.Close()
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("Subscribe through a partition: got nil error, want one")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe through a partition: still waiting after 10s")
	}
}

// TestNewRedis checks option validation and the topology each option
// set selects. NewRedis must not dial, so unreachable addresses are fine.
func TestNewRedis(t *testing.T) {
	tests := []struct {
		name    string
		opts    store.RedisOptions
		wantErr string // substring; empty means success
		want    string // client type on success
	}{
		{"single node", store.RedisOptions{Addrs: []string{"127.0.0.1:1"}, DB: 2}, "", "*redis.Client"},
		{"cluster", store.RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "", "*redis.ClusterClient"},
		{"sentinel", store.RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "mymaster", DB: 1}, "", "*redis.Client"},
		{"no addrs", store.RedisOptions{}, "addrs: at least one address", ""},
		{"empty addr", store.RedisOptions{Addrs: []string{""}}, "addrs[0]: empty", ""},
		{"cluster db", store.RedisOptions{Addrs: []string{"a:1", "b:1"}, DB: 1}, "only db 0", ""},
		{"negative db", store.RedisOptions{Addrs: []string{"a:1"}, DB: -1}, "db: must be >= 0", ""},
		{"negative timeout", store.RedisOptions{Addrs: []string{"a:1"}, ReadTimeout: -1}, "read_timeout", ""},
		{"negative pool", store.RedisOptions{Addrs: []string{"a:1"}, PoolSize: -1}, "pool_size", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := store.NewRedis(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "store: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRedis: %v", err)
			}
			defer r.Close()
			if got := fmt.Sprintf("%T", r.Client()); got != tt.want {
				t.Fatalf("client type %s, want %s", got, tt.want)
			}
		})
	}
}
