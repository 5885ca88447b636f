package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// incrScript increments KEYS[1] and, only if the key did not exist,
// sets its expiry to ARGV[1] milliseconds (0 means none). It is a script so
// that the increment and the expiry are atomic: a crash between an INCR and
// a separate PEXPIRE would leave a counter that never expires.
const incrScript = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCR', KEYS[1])
if created and tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`

// RedisOptions configures NewRedis. The topology follows from the fields:
//
//   - MasterName set: Sentinel. Addrs are the sentinels' addresses and
//     commands go to the master they name.
//   - otherwise, one address: a single Redis node.
//   - otherwise, several addresses: Redis Cluster. Addrs seed the discovery
//     of the cluster's nodes. (A one-node cluster cannot be addressed.)
type RedisOptions struct {
	// Addrs are "host:port" addresses. Required.
	Addrs []string
	// MasterName selects Sentinel mode and names the monitored master.
	MasterName string
	// Username is the ACL user. Default: none (the "default" user).
	Username string
	// Password authenticates Username, or the server's requirepass. It must
	// come from a secret, never from the YAML config.
	Password string
	// DB is the database number. Default: 0. Cluster supports only 0.
	DB int
	// KeyPrefix is prepended to every key and every channel name, so
	// several deployments can share one Redis. Default: none.
	KeyPrefix string
	// DialTimeout bounds connecting. Default (0): the go-redis default, 5s.
	DialTimeout time.Duration
	// ReadTimeout bounds each read. Default (0): the go-redis default, 3s.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write. Default (0): ReadTimeout.
	WriteTimeout time.Duration
	// PoolSize is the connection pool size per node. Default (0): the
	// go-redis default, 10 per CPU.
	PoolSize int
	// PoolTimeout bounds the wait for a free connection when all are busy.
	// Default (0): the go-redis default, ReadTimeout + 1s.
	PoolTimeout time.Duration
	// MaxRetries is how many times a command failed for a network reason is
	// retried. Default (0): the go-redis default, 3; -1: none.
	MaxRetries int
	// MinRetryBackoff and MaxRetryBackoff bound the pause before a retry.
	// Default (0): the go-redis defaults, 10ms and 1s.
	MinRetryBackoff, MaxRetryBackoff time.Duration
	// DialRetries is how many dials a new connection gets (go-redis
	// DialerRetries), MinRetryBackoff apart. Default (0): the go-redis
	// default, 5, 100ms apart.
	DialRetries int
	// WaitReplicas is how many replicas Redis.WaitReplicas waits for: 0 (the default)
	// none, -1 auto (see WaitReplicas). WaitTimeout bounds each wait (default 100ms).
	WaitReplicas int
	WaitTimeout  time.Duration
	// Breaker, when set, stops every command at once with ErrUnavailable
	// while it is open, and is opened by a command that fails for a network
	// reason; Ping still reaches the server. Default: none.
	Breaker *Breaker
}

// validate returns every problem with o at once.
func (o RedisOptions) validate() error {
	var errs []error
	if len(o.Addrs) == 0 {
		errs = append(errs, errors.New("addrs: at least one address is required"))
	}
	for i, a := range o.Addrs {
		if a == "" {
			errs = append(errs, fmt.Errorf("addrs[%d]: empty address", i))
		}
	}
	if o.DB < 0 {
		errs = append(errs, fmt.Errorf("db: must be >= 0, got %d", o.DB))
	}
	if o.DB != 0 && o.MasterName == "" && len(o.Addrs) > 1 {
		errs = append(errs, fmt.Errorf("db: Redis Cluster supports only db 0, got %d", o.DB))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", o.DialTimeout},
		{"read_timeout", o.ReadTimeout},
		{"write_timeout", o.WriteTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %s", d.name, d.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"pool_timeout", o.PoolTimeout},
		{"min_retry_backoff", o.MinRetryBackoff},
		{"max_retry_backoff", o.MaxRetryBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %s", d.name, d.v))
		}
	}
	if o.MaxRetries < -1 {
		errs = append(errs, fmt.Errorf("max_retries: must be >= -1, got %d", o.MaxRetries))
	}
	if o.DialRetries < 0 {
		errs = append(errs, fmt.Errorf("dial_retries: must be >= 0, got %d", o.DialRetries))
	}
	if o.WaitReplicas < -1 || o.WaitTimeout < 0 {
		errs = append(errs, fmt.Errorf("wait_replicas: replicas must be >= -1 and timeout >= 0, got %d, %s", o.WaitReplicas, o.WaitTimeout))
	}
	if o.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("pool_size: must be >= 0, got %d", o.PoolSize))
	}
	return errors.Join(errs...)
}

// Redis is a Store backed by Redis through a go-redis UniversalClient, so
// that every replica of the gateway sees the same state. It is safe for
// concurrent use. Errors from the server or the network are wrapped and
// returned; a caller decides whether to fail open or closed.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	incr   *redis.Script

	sentinel bool   // MasterName was set
	wait     waiter // see WaitReplicas

	// confirm bounds the wait for a subscription's confirmation: one dial and one read.
	confirm time.Duration

	closed atomic.Bool // set under mu; read without it on every call
	mu     sync.Mutex  // guards subs
	subs   map[*Subscription]struct{}
}

// NewRedis returns a Redis store for opts; see RedisOptions for how the
// topology is chosen. It does not connect: connections are made on first
// use, so use Ping to check the server. It returns an error only for
// invalid options.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("store: redis options: %w", err)
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        opts.Addrs,
		MasterName:   opts.MasterName,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		DialTimeout:  opts.DialTimeout,
		ReadTimeout:  opts.ReadTimeout,
		WriteTimeout: opts.WriteTimeout,
		PoolSize:     opts.PoolSize,
		PoolTimeout:  opts.PoolTimeout,
		MaxRetries:   opts.MaxRetries,
		// go-redis reads 0 as its default and -1 as none; here 0 is the default too.
		MinRetryBackoff:    opts.MinRetryBackoff,
		MaxRetryBackoff:    opts.MaxRetryBackoff,
		DialerRetries:      opts.DialRetries,
		DialerRetryTimeout: opts.MinRetryBackoff,
		// Honour the caller's context deadline on the socket, so that a
		// request's timeout (or a client going away) bounds each Redis call.
		ContextTimeoutEnabled: true,
	})
	if opts.Breaker != nil {
		rdb.AddHook(breakerHook{b: opts.Breaker})
	}
	wt := opts.WaitTimeout
	if wt == 0 {
		wt = 100 * time.Millisecond
	}
	return &Redis{
		rdb:      rdb,
		sentinel: opts.MasterName != "",
		wait:     waiter{replicas: opts.WaitReplicas, timeout: wt},
		confirm:  confirmTimeout(opts),
		prefix:   opts.KeyPrefix,
		incr:     redis.NewScript(incrScript),
		subs:     make(map[*Subscription]struct{}),
	}, nil
}

// confirmTimeout is one dial and one read, with go-redis's defaults (5s, 3s) for the
// unset ones.
func confirmTimeout(o RedisOptions) time.Duration {
	dial, read := o.DialTimeout, o.ReadTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	if read == 0 {
		read = 3 * time.Second
	}
	return dial + read
}

// Client returns the underlying client, for features that need commands
// Store lacks. Keys used through it do not get KeyPrefix automatically; use
// Key.
func (r *Redis) Client() redis.UniversalClient { return r.rdb }

// Key returns key with the configured KeyPrefix, as it is stored in Redis.
func (r *Redis) Key(key string) string { return r.prefix + key }

// Ping sends PING to the server. It is a probe: it reaches the server even while the
// Breaker is open.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if err := r.rdb.Ping(asProbe(ctx)).Err(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Get returns the value of key, or ErrNotFound.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	val, err := r.rdb.Get(ctx, r.Key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	return val, nil
}

// Set stores val under key with the given ttl (0 means none).
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	if err := r.checkOpen(); err != nil {
		return err
	}
	if err := r.rdb.Set(ctx, r.Key(key), val, redisTTL(ttl)).Err(); err != nil {
		return fmt.Errorf("store: set: %w", err)
	}
	return nil
}

// SetNX stores val under key only if key is absent, and reports whether it did.
func (r *Redis) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	if err := r.checkOpen(); err != nil {
		return false, err
	}
	ok, err := r.rdb.SetNX(ctx, r.Key(key), val, redisTTL(ttl)).Result()
	if err != nil {
		return false, fmt.Errorf("store: setnx: %w", err)
	}
	return ok, nil
}

// Delete removes keys; absent keys are ignored.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil // DEL with no keys is a syntax error
	}
	// One DEL per key in a pipeline rather than one multi-key DEL: in a
	// Cluster the keys may live in different slots (CROSSSLOT), and the
	// cluster client routes each pipelined command to its own node.
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.Key(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	return nil
}

// Incr increments the integer under key, setting ttl only when the key is
// created, atomically.
func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	if err := r.checkOpen(); err != nil {
		return 0, err
	}
	n, err := r.incr.Run(ctx, r.rdb, []string{r.Key(key)}, redisTTL(ttl).Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("store: incr: %w", err)
	}
	return n, nil
}

// Publish sends msg on channel (with KeyPrefix) to subscribers in every
// replica.
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if err := r.rdb.Publish(ctx, r.Key(channel), msg).Err(); err != nil {
		return fmt.Errorf("store: publish: %w", err)
	}
	return nil
}

// Subscribe subscribes to channel (with KeyPrefix) and waits for the
// server to confirm, so it fails when Redis is unreachable; the wait is
// bounded by one dial and one read timeout, also when the network drops
// packets without a reset. After that,
// go-redis reconnects and re-subscribes by itself whenever the connection
// is lost; each re-subscription is reported on Reconnected, since messages
// published while disconnected are lost.
func (r *Redis) Subscribe(ctx context.Context, channel string) (*Subscription, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	ps := r.rdb.Subscribe(ctx, r.Key(channel))
	// The first reply is the confirmation of the initial subscription;
	// consuming it here means it is not mistaken for a reconnect below.
	rctx, cancel := context.WithTimeout(ctx, r.confirm)
	reply, err := ps.Receive(rctx)
	cancel()
	if err != nil {
		_ = ps.Close() // the subscribe error is the one to report
		return nil, fmt.Errorf("store: subscribe: %w", err)
	}
	if _, ok := reply.(*redis.Subscription); !ok {
		_ = ps.Close()
		return nil, fmt.Errorf("store: subscribe: unexpected first reply %T", reply)
	}

	sub := newSubscription()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(subscriptionBuffer))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(sub.msgs)
		// go-redis closes ch once ps is closed and its reader has stopped.
		for m := range ch {
			switch m := m.(type) {
			case *redis.Message:
				sub.deliver([]byte(m.Payload))
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					sub.signalReconnect()
				}
			}
		}
	}()
	sub.release = func() error {
		err := ps.Close()
		<-finished
		r.mu.Lock()
		delete(r.subs, sub)
		r.mu.Unlock()
		return err
	}

	r.mu.Lock()
	closed := r.closed.Load()
	if !closed {
		r.subs[sub] = struct{}{}
	}
	r.mu.Unlock()
	if closed { // Close ran while we were subscribing
		_ = sub.Close()
		return nil, ErrClosed
	}
	sub.watch(ctx)
	return sub, nil
}

// Close closes every subscription and then the client. Closing twice
// returns ErrClosed.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return ErrClosed
	}
	subs := make([]*Subscription, 0, len(r.subs))
	for sub := range r.subs {
		subs = append(subs, sub)
	}
	r.mu.Unlock()

	var errs []error
	for _, sub := range subs {
		errs = append(errs, sub.Close())
	}
	if err := r.rdb.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: close redis: %w", err))
	}
	return errors.Join(errs...)
}

// checkOpen returns ErrClosed after Close.
func (r *Redis) checkOpen() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return nil
}

// redisTTL rounds a positive ttl below Redis's 1ms resolution up to 1ms,
// so that it expires rather than meaning "no expiry".
func redisTTL(ttl time.Duration) time.Duration {
	if ttl > 0 && ttl < time.Millisecond {
		return time.Millisecond
	}
	return ttl
}
