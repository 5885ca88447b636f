// Package audit records credential life-cycle events (key created, edited, refreshed,
// rotated, revoked, used from a new IP): one structured log line each and, with Redis, an
// entry in a capped Redis stream that every replica writes to.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The events of SPEC section 7.
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
	err := l.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: l.stream,
		MaxLen: StreamMaxLen,
		Approx: true,
		Values: []any{"event", e.Type, "key_id", e.KeyID, "user_id", e.UserID, "actor", e.Actor, "client_ip", e.ClientIP,
			"detail", e.Detail, "at", e.Time.UTC().Format(time.RFC3339Nano)},
	}).Err()
	if err != nil {
		l.logger.LogAttrs(ctx, slog.LevelError, "audit stream write failed", slog.String("event", e.Type),
			slog.String("key_id", e.KeyID), slog.String("error", err.Error()))
		return fmt.Errorf("audit: xadd: %w", err)
	}
	return nil
}
