package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/redistest"
)

func newCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_api_key_events_total"}, []string{"event"})
}

var at = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func TestRecordToStreamAndLog(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	var logs bytes.Buffer
	events := newCounter()
	l := New(slog.New(slog.NewJSONHandler(&logs, nil)), rdb, "ag:", events, func() time.Time { return at })
	ctx := context.Background()

	if err := l.Record(ctx, Event{Type: KeyCreated, KeyID: "key_1", Actor: "user_7", ClientIP: "10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, Event{Type: KeyRevoked, KeyID: "key_1", Actor: "user_7"}); err != nil {
		t.Fatal(err)
	}

	msgs, err := rdb.XRange(ctx, "ag:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("stream has %d entries, want 2", len(msgs))
	}
	first := msgs[0].Values
	if first["event"] != KeyCreated || first["key_id"] != "key_1" || first["actor"] != "user_7" ||
		first["client_ip"] != "10.0.0.1" || first["at"] != "2026-11-25T08:00:00Z" {
		t.Errorf("first entry = %v", first)
	}
	if msgs[1].Values["event"] != KeyRevoked {
		t.Errorf("second entry event = %v, want revoked", msgs[1].Values["event"])
	}
	if got := testutil.ToFloat64(events.WithLabelValues(KeyCreated)); got != 1 {
		t.Errorf("created counter = %v, want 1", got)
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %s", len(lines), logs.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["msg"] != "audit" || line["event"] != KeyCreated || line["key_id"] != "key_1" {
		t.Errorf("log line = %v", line)
	}
}

func TestRecordWithoutRedisLogsOnly(t *testing.T) {
	var logs bytes.Buffer
	events := newCounter()
	l := New(slog.New(slog.NewJSONHandler(&logs, nil)), nil, "ag:", events, func() time.Time { return at })
	if err := l.Record(context.Background(), Event{Type: KeyEdited, KeyID: "key_2"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"event":"edited"`) || testutil.ToFloat64(events.WithLabelValues(KeyEdited)) != 1 {
		t.Errorf("log %q / counter not written", logs.String())
	}
}

func TestRecordStoreDownStillLogs(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	srv.Stop(t)
	var logs bytes.Buffer
	events := newCounter()
	l := New(slog.New(slog.NewJSONHandler(&logs, nil)), rdb, "ag:", events, func() time.Time { return at })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Record(ctx, Event{Type: KeyRotated, KeyID: "key_3"}); err == nil {
		t.Fatal("Record with Redis down: want an error")
	}
	if !strings.Contains(logs.String(), `"msg":"audit"`) || !strings.Contains(logs.String(), "audit stream write failed") {
		t.Errorf("logs = %s, want the event line and the failure line", logs.String())
	}
	if testutil.ToFloat64(events.WithLabelValues(KeyRotated)) != 1 {
		t.Error("counter not incremented")
	}
}
