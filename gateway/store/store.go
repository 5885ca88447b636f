// Package store holds the gateway's shared state: a memory implementation
// for one process and a Redis implementation (go-redis v9 UniversalClient)
// for many replicas.
//
// Both implementations satisfy Store and pass the same contract tests. Error
// messages never contain keys or values, because later features derive keys
// from credentials (API key hashes, session IDs).
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned by Get when the key is absent or has expired.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by every method of a store after Close.
var ErrClosed = errors.New("store: closed")

// Store is the key/value and pub/sub contract later features (API keys,
// sessions, revocation) build on. Implementations are safe for concurrent
// use. A TTL of 0 means no expiry; a negative TTL is an error.
type Store interface {
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Get returns the value of key, or ErrNotFound when it is absent or expired.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores val under key, replacing any value and TTL. A ttl of 0 means no expiry.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val under key only if key is absent, and reports whether it did.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Delete removes keys. Absent keys, and no keys at all, are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds one to the integer stored under key (a missing key counts
	// as 0) and returns the new value. The ttl is applied only when Incr
	// creates the key; later calls do not extend it. The value is stored as
	// a decimal string, so Get returns e.g. "3".
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Publish sends msg to the current subscribers of channel.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe delivers messages published on channel until ctx is done
	// or the Subscription is closed. When Subscribe returns, the
	// subscription is active: a message published afterwards is delivered.
	// The Subscription reports, on Reconnected, when messages may have been
	// lost, so a consumer can flush caches.
	Subscribe(ctx context.Context, channel string) (*Subscription, error)
	// Close releases the store's resources and closes its subscriptions.
	Close() error
}

// subscriptionBuffer bounds how many undelivered messages a Subscription
// holds. A publisher never waits for a slow subscriber: past this bound
// messages are dropped, counted, and reported on Reconnected.
const subscriptionBuffer = 256

// Subscription is a stream of messages from one channel, created by
// Store.Subscribe. It is safe for concurrent use.
//
// Messages are buffered up to 256 deep. A subscriber that falls further
// behind loses messages: they are counted by Dropped and reported on
// Reconnected, exactly like messages lost during a reconnect, because in
// both cases the consumer's view may be stale.
type Subscription struct {
	msgs        chan []byte
	reconnected chan struct{}
	dropped     atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed by Close; stops the context watcher
	release   func() error  // implementation's teardown; it must close msgs
}

// newSubscription returns a Subscription. The caller sets release, then
// calls watch, before handing the Subscription out.
func newSubscription() *Subscription {
	return &Subscription{
		msgs:        make(chan []byte, subscriptionBuffer),
		reconnected: make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
}

// watch closes s when ctx is done. The goroutine ends with s.
func (s *Subscription) watch(ctx context.Context) {
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close() // the error has no one to go to; Close records it
		case <-s.closed:
		}
	}()
}

// C returns the channel of message payloads. It is closed after the
// Subscription is closed, its context is done, or its store is closed.
func (s *Subscription) C() <-chan []byte { return s.msgs }

// Reconnected returns a channel that receives a value whenever messages may
// have been missed: after the connection to the server was lost and
// re-established (messages published meanwhile are gone), or after the
// buffer overflowed. Signals coalesce: one value may stand for several
// events. It never receives for the initial subscription, and it is never
// closed.
func (s *Subscription) Reconnected() <-chan struct{} { return s.reconnected }

// Dropped returns how many messages were discarded because the subscriber
// did not keep up.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes C. It is idempotent; every call returns
// the result of the first.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		if err := s.release(); err != nil {
			s.closeErr = fmt.Errorf("store: close subscription: %w", err)
		}
	})
	return s.closeErr
}

// deliver queues msg without blocking. The caller guarantees that msgs is
// not closed concurrently.
func (s *Subscription) deliver(msg []byte) {
	select {
	case s.msgs <- msg:
	default:
		s.dropped.Add(1)
		s.signalReconnect()
	}
}

// signalReconnect records a reconnect without blocking; pending signals
// coalesce.
func (s *Subscription) signalReconnect() {
	select {
	case s.reconnected <- struct{}{}:
	default:
	}
}

// checkTTL rejects negative TTLs, which would mean different things to the
// two implementations (go-redis treats -1 as KEEPTTL).
func checkTTL(op string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("store: %s: negative ttl %s", op, ttl)
	}
	return nil
}
