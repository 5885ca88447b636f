// Package audit records credential life-cycle events (key created, edited, refreshed,
// rotated, revoked, used from a new IP): one structured log line each and, with Redis, an
// entry in a capped Redis stream that every replica writes to.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The events of a key's life cycle (docs/api-keys.md).
const (
	KeyCreated   = "created"
	KeyEdited    = "edited"
	KeyRefreshed = "refreshed"
	KeyRotated   = "rotated"
	KeyRevoked   = "revoked"
	KeyNewIP     = "used_from_new_ip"
)

// User events (section 7's users calls). They are logged and streamed like key events but
// not counted in authgate_api_key_events_total.
const (
	UserCreated = "user_created"
	UserEdited  = "user_edited"
	UserDeleted = "user_deleted"
	// Team events: Event.Team names the team; membership changes carry UserID too.
	TeamCreated       = "team_created"
	TeamRenamed       = "team_renamed"
	TeamDeleted       = "team_deleted"
	TeamMemberAdded   = "team_member_added"
	TeamMemberRemoved = "team_member_removed"
)

// Event is one life-cycle event. It never holds a secret: keys appear by id only.
type Event struct {
	Type     string    // one of the constants above
	KeyID    string    // the key concerned
	UserID   string    // the user concerned, for user events
	Team     string    // the team concerned, for team events
	Actor    string    // user id, or "key:<id>" when a key acted on itself
	ClientIP string    // where the call came from
	Detail   string    // free text without secrets, e.g. "fields: name,scopes"
	Time     time.Time // when; zero means now
}

// StreamMaxLen caps the Redis stream (approximately, as XADD MAXLEN ~ does).
const StreamMaxLen = 100_000

// Log writes events. A nil rdb logs only. It is safe for concurrent use.
type Log struct {
	logger *slog.Logger
	rdb    redis.UniversalClient
	stream string
	events *prometheus.CounterVec
	now    func() time.Time

	mu         sync.Mutex
	pending    []Event // stream writes that failed, oldest first
	retryMax   int     // bound on pending; 0: nothing is kept
	onDrop     func(n int)
	dropLogged bool
}

// WithRetry keeps up to max records whose stream write failed, for Run to write again
// with their original times; onDrop (may be nil) is told of those that do not fit, which
// are also logged once per outage. It returns l; call it before l is used.
func (l *Log) WithRetry(max int, onDrop func(n int)) *Log {
	l.retryMax, l.onDrop = max, onDrop
	return l
}

// Run writes the kept records again every interval until ctx is done, then once more
// (bounded by 2s).
func (l *Log) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.retry(ctx)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			l.retry(dctx)
			return
		}
	}
}

// retry writes the kept records, oldest first, until one fails.
func (l *Log) retry(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.pending) > 0 {
		if err := l.xadd(ctx, l.pending[0]); err != nil {
			return
		}
		l.pending = l.pending[1:]
	}
	l.pending, l.dropLogged = nil, false
}

// keep queues e for retry, or drops it when the buffer is full.
func (l *Log) keep(ctx context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) < l.retryMax {
		l.pending = append(l.pending, e)
		return
	}
	if l.onDrop != nil {
		l.onDrop(1)
	}
	if !l.dropLogged {
		l.dropLogged = true
		l.logger.LogAttrs(ctx, slog.LevelError, "audit retry buffer full; records dropped from the stream until it answers again",
			slog.Int("buffer", l.retryMax))
	}
}

func (l *Log) xadd(ctx context.Context, e Event) error {
	return l.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: l.stream,
		MaxLen: StreamMaxLen,
		Approx: true,
		Values: []any{"event", e.Type, "key_id", e.KeyID, "user_id", e.UserID, "actor", e.Actor, "client_ip", e.ClientIP,
			"detail", e.Detail, "at", e.Time.UTC().Format(time.RFC3339Nano)},
	}).Err()
}

// New returns a Log writing to logger and, when rdb is not nil, to the stream
// "<prefix>audit". events counts by type (authgate_api_key_events_total).
func New(logger *slog.Logger, rdb redis.UniversalClient, prefix string, events *prometheus.CounterVec, now func() time.Time) *Log {
	return &Log{logger: logger, rdb: rdb, stream: prefix + "audit", events: events, now: now}
}

// Stream is the Redis stream's key.
func (l *Log) Stream() string { return l.stream }

// Record writes e. The log line and the metric always happen; a stream write that fails
// is logged and returned, and the caller's action (which has already happened) stands.
func (l *Log) Record(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	if e.UserID == "" && e.Team == "" {
		l.events.WithLabelValues(e.Type).Inc()
	}
	l.logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("event", e.Type), slog.String("key_id", e.KeyID), slog.String("user_id", e.UserID), slog.String("actor", e.Actor),
		slog.String("client_ip", e.ClientIP), slog.String("detail", e.Detail), slog.Time("at", e.Time))
	if l.rdb == nil {
		return nil
	}
	l.mu.Lock()
	behind := len(l.pending) > 0
	l.mu.Unlock()
	var err error
	if behind {
		err = errors.New("earlier records are still waiting to be written") // keep the stream in order
	} else {
		err = l.xadd(ctx, e)
	}
	if err != nil {
		if l.retryMax > 0 {
			l.keep(ctx, e)
		}
		l.logger.LogAttrs(ctx, slog.LevelError, "audit stream write failed", slog.String("event", e.Type),
			slog.String("key_id", e.KeyID), slog.String("error", err.Error()))
		return fmt.Errorf("audit: xadd: %w", err)
	}
	return nil
}
