// Package pwhash bounds the password hashing (argon2id) done on request paths: logins,
// re-authentication, and passwords set through the users API. Each hash holds its memory
// cost (64 MiB by default) for tens of milliseconds, so unbounded concurrent logins are a
// memory and CPU sink. A Pool runs at most Concurrency hashes at once, lets at most Queue
// more wait for at most MaxWait, and refuses the rest at once with 503 server_busy and
// Retry-After. One Pool serves the whole process; it is passed to whoever hashes.
package pwhash

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
)

// ErrBusy is wrapped by the error of a hash refused because the pool and its queue were
// full, or the wait was too long.
var ErrBusy = errors.New("pwhash: too many password hashes at once")

// Hasher is the hashing itself: Argon2id in production; tests inject a slow one.
type Hasher interface {
	Hash(password string, p user.Params) (string, error)
	Verify(encoded, password string) (bool, error)
}

// Argon2id is the Hasher of package user (user.HashPassword, user.VerifyPassword).
type Argon2id struct{}

// Hash is user.HashPassword.
func (Argon2id) Hash(password string, p user.Params) (string, error) {
	return user.HashPassword(password, p)
}

// Verify is user.VerifyPassword.
func (Argon2id) Verify(encoded, password string) (bool, error) {
	return user.VerifyPassword(encoded, password)
}

// Defaults of Options.
const (
	DefaultMaxWait    = time.Second
	DefaultRetryAfter = time.Second
)

// Options configure a Pool. Zero values take the defaults.
type Options struct {
	// Hasher hashes. Default: Argon2id.
	Hasher Hasher
	// Concurrency is the most hashes running at once. Default: runtime.NumCPU().
	Concurrency int
	// Queue is the most hashes waiting for a slot. Default: Concurrency. Negative: none.
	Queue int
	// MaxWait is the longest a hash waits for a slot. Default: DefaultMaxWait.
	MaxWait time.Duration
	// OnBusy is told of every refusal (a metric). Optional.
	OnBusy func()
}

// Pool runs hashes within its bounds. It is safe for concurrent use.
type Pool struct {
	o       Options
	slots   chan struct{}
	waiting atomic.Int64
}

// New returns a Pool.
func New(o Options) *Pool {
	if o.Hasher == nil {
		o.Hasher = Argon2id{}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.NumCPU()
	}
	switch {
	case o.Queue == 0:
		o.Queue = o.Concurrency
	case o.Queue < 0:
		o.Queue = 0
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.OnBusy == nil {
		o.OnBusy = func() {}
	}
	return &Pool{o: o, slots: make(chan struct{}, o.Concurrency)}
}

// Hash hashes password with p within the bounds. Refused: an *httperr.Error wrapping ErrBusy.
func (p *Pool) Hash(ctx context.Context, password string, params user.Params) (string, error) {
	var (
		h   string
		err error
	)
	if werr := p.do(ctx, func() { h, err = p.o.Hasher.Hash(password, params) }); werr != nil {
		return "", werr
	}
	return h, err
}

// Verify checks password against encoded within the bounds. Refused: an *httperr.Error
// wrapping ErrBusy (ok false).
func (p *Pool) Verify(ctx context.Context, encoded, password string) (bool, error) {
	var (
		ok  bool
		err error
	)
	if werr := p.do(ctx, func() { ok, err = p.o.Hasher.Verify(encoded, password) }); werr != nil {
		return false, werr
	}
	return ok, err
}

// do runs fn in a slot: at once when one is free, else after a bounded wait in the queue.
func (p *Pool) do(ctx context.Context, fn func()) error {
	select {
	case p.slots <- struct{}{}:
	default:
		if err := p.wait(ctx); err != nil {
			p.o.OnBusy()
			return err
		}
	}
	defer func() { <-p.slots }()
	fn()
	return nil
}

func (p *Pool) wait(ctx context.Context) error {
	if p.waiting.Add(1) > int64(p.o.Queue) {
		p.waiting.Add(-1)
		return busy(nil)
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(p.o.MaxWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return busy(nil)
	case <-ctx.Done():
		return busy(ctx.Err())
	}
}

func busy(cause error) error {
	err := ErrBusy
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrBusy, cause)
	}
	return &httperr.Error{Status: http.StatusServiceUnavailable, Code: "server_busy",
		Msg: "too many password checks at once; retry shortly", Err: err, RetryAfter: DefaultRetryAfter}
}
