package audit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestRetryKeepsRecordsThroughAnOutage: records whose stream write failed while Redis
// was down reach the stream once it is back, with the times they happened and in order;
// past the bound they are dropped, counted and logged once.
func TestRetryKeepsRecordsThroughAnOutage(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client(t)
	var logs bytes.Buffer
	var dropped int
	l := New(slog.New(slog.NewTextHandler(&logs, nil)), rc, "ag:", prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"event"}), time.Now).
		WithRetry(3, func(n int) { dropped += n })
	ctx := context.Background()
	rs.Stop(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 5 {
		if err := l.Record(ctx, Event{Type: KeyRevoked, KeyID: "k", Actor: "u", Time: t0.Add(time.Duration(i) * time.Second)}); err == nil {
			t.Fatalf("record %d: no error with Redis down", i)
		}
	}
	if dropped != 2 {
		t.Errorf("dropped %d, want 2", dropped)
	}
	if n := strings.Count(logs.String(), "retry buffer full"); n != 1 {
		t.Errorf("the drop was logged %d times, want once", n)
	}
	rs.Restart(t)
	l.retry(ctx)
	msgs, err := rc.XRange(ctx, "ag:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("stream has %d records, want the 3 kept", len(msgs))
	}
	for i, m := range msgs {
		if want := t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano); m.Values["at"] != want {
			t.Errorf("record %d at %v, want %s", i, m.Values["at"], want)
		}
	}
}
