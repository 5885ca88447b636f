// Package activity records what each API key did — its last 1,000 requests and daily
// request counts — off the request path: Record only enqueues, and a background loop writes
// batches to Redis (or memory) in one pipeline.
package activity

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// Event is one request made with a key.
type Event struct {
	KeyID    string    `json:"-"`
	Time     time.Time `json:"time"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Route    string    `json:"route"`
	Status   int       `json:"status"`
	ClientIP string    `json:"client_ip"`
}

// Day is the number of requests a key made on one UTC date.
type Day struct {
	Date     string `json:"date"` // 2006-01-02
	Requests int64  `json:"requests"`
}

// Keep is how many recent requests are kept per key.
const Keep = 1000

// Sink stores activity; RedisSink and MemorySink implement it.
type Sink interface {
	// Write stores a batch: each event at the head of its key's recent list (trimmed to
	// Keep) and counted in its key's day. It returns the events whose client IP the key
	// had never been used from before (one per new key and IP pair).
	Write(ctx context.Context, batch []Event) (fresh []Event, err error)
	// Recent returns a key's last n events, newest first.
	Recent(ctx context.Context, keyID string, n int) ([]Event, error)
	// Daily returns a key's counts for the days days up to and including now's UTC date,
	// oldest first, with zero days included.
	Daily(ctx context.Context, keyID string, days int, now time.Time) ([]Day, error)
}

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	// Buffer bounds the events waiting to be written. Default: 8192. When it is full,
	// events are dropped and counted: the request path never waits for activity.
	Buffer int
	// BatchSize writes a batch once this many events wait. Default: 512.
	BatchSize int
	// Interval writes whatever waits at least this often. Default: 1s.
	Interval time.Duration
	// Touch, when set, receives each batch's last use per key (for last_used_at).
	Touch func(ctx context.Context, lastUsed map[string]time.Time) error
	// NewIP, when set, is called for the first use of a key from a client IP.
	NewIP func(ctx context.Context, e Event)
	// Logger reports failed writes. Default: discard.
	Logger *slog.Logger
	// Retry bounds the events kept, after a failed write, to be written again with their
	// original times (at each interval, oldest first). Default: 16384. What does not fit
	// is dropped, counted (Dropped, OnDrop) and logged once per outage.
	Retry int
	// OnDrop, when set, is told of every dropped event (for a metric).
	OnDrop func(n int)
}

// Recorder queues events and writes them in batches. Record is safe for concurrent use;
// Run must be running for anything to be written.
type Recorder struct {
	ch      chan Event
	sink    Sink
	opts    Options
	dropped atomic.Uint64
	written atomic.Uint64

	// Owned by Run's goroutine.
	pending    []Event // failed writes, oldest first, at most opts.Retry
	dropLogged bool    // a drop was logged since the last successful write
	failLogged bool    // a failed write was logged since the last successful one
}

// New returns a Recorder writing to s.
func New(s Sink, opts Options) *Recorder {
	if opts.Buffer <= 0 {
		opts.Buffer = 8192
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retry <= 0 {
		opts.Retry = 16384
	}
	return &Recorder{ch: make(chan Event, opts.Buffer), sink: s, opts: opts}
}

// Record queues e without ever blocking; it reports false when the queue was full and e
// was dropped.
func (r *Recorder) Record(e Event) bool {
	select {
	case r.ch <- e:
		return true
	default:
		r.dropped.Add(1)
		if r.opts.OnDrop != nil {
			r.opts.OnDrop(1)
		}
		return false
	}
}

// keep queues a failed batch for another try, dropping what does not fit.
func (r *Recorder) keep(batch []Event) {
	room := r.opts.Retry - len(r.pending)
	n := min(room, len(batch))
	r.pending = append(r.pending, batch[:n]...)
	if lost := len(batch) - n; lost > 0 {
		r.dropped.Add(uint64(lost))
		if r.opts.OnDrop != nil {
			r.opts.OnDrop(lost)
		}
		if !r.dropLogged {
			r.dropLogged = true
			r.opts.Logger.Error("activity retry buffer full; events dropped until the store answers again",
				slog.Int("dropped", lost), slog.Int("buffer", r.opts.Retry))
		}
	}
}

// write writes one batch and reports whether it reached the sink.
func (r *Recorder) write(ctx context.Context, batch []Event) bool {
	fresh, err := r.sink.Write(ctx, batch)
	if err != nil {
		if !r.failLogged {
			r.failLogged = true
			r.opts.Logger.Error("activity write failed; kept for retry", slog.Int("events", len(batch)), slog.String("error", err.Error()))
		}
		return false
	}
	r.failLogged, r.dropLogged = false, false
	r.written.Add(uint64(len(batch)))
	if r.opts.NewIP != nil {
		for _, e := range fresh {
			r.opts.NewIP(ctx, e)
		}
	}
	return true
}

// retry writes the pending events, oldest first, in batches, until one fails, and
// reports whether none is left.
func (r *Recorder) retry(ctx context.Context) bool {
	for len(r.pending) > 0 {
		n := min(len(r.pending), r.opts.BatchSize)
		if !r.write(ctx, r.pending[:n]) {
			return false
		}
		r.pending = r.pending[n:]
	}
	r.pending = nil
	return true
}

// writeOrKeep writes batch after the pending events; while those cannot be written,
// batch joins them (so the order of writes is the order of events).
func (r *Recorder) writeOrKeep(ctx context.Context, batch []Event) {
	if !r.retry(ctx) || !r.write(ctx, batch) {
		r.keep(slices.Clone(batch))
	}
}

// Dropped is how many events were dropped: the queue was full, or their write failed
// and the retry buffer was full.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Written is how many events reached the sink.
func (r *Recorder) Written() uint64 { return r.written.Load() }

// Run writes batches until ctx is done, then writes what is still queued (bounded by a
// short timeout of its own) and returns.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	batch := make([]Event, 0, r.opts.BatchSize)
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		r.writeOrKeep(ctx, batch)
		if r.opts.Touch != nil {
			last := map[string]time.Time{}
			for _, e := range batch {
				if e.Time.After(last[e.KeyID]) {
					last[e.KeyID] = e.Time
				}
			}
			if err := r.opts.Touch(ctx, last); err != nil {
				r.opts.Logger.Error("last_used_at update failed", slog.String("error", err.Error()))
			}
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-r.ch:
			batch = append(batch, e)
			if len(batch) >= r.opts.BatchSize {
				flush(ctx)
			}
		case <-t.C:
			if len(batch) == 0 {
				r.retry(ctx)
			}
			flush(ctx)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
		drain:
			for range cap(r.ch) { // bounded: producers may still be sending
				select {
				case e := <-r.ch:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			flush(dctx)
			return
		}
	}
}
