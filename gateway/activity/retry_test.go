package activity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failingSink fails every write while down is set, and records what it accepted.
type failingSink struct {
	down atomic.Bool
	mu   sync.Mutex
	got  []Event
	*MemorySink
}

func (f *failingSink) Write(ctx context.Context, b []Event) ([]Event, error) {
	if f.down.Load() {
		return nil, errors.New("store down")
	}
	f.mu.Lock()
	f.got = append(f.got, b...)
	f.mu.Unlock()
	return f.MemorySink.Write(ctx, b)
}

func (f *failingSink) accepted() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.got...)
}

// syncLog is a log buffer safe for the Recorder's goroutine.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRetryAfterFailedWrites: events whose write failed are written once the sink is
// back, with the times they happened, in order; past the retry bound they are dropped,
// counted once each (OnDrop) and logged once.
func TestRetryAfterFailedWrites(t *testing.T) {
	sink := &failingSink{MemorySink: NewMemorySink()}
	sink.down.Store(true)
	logs := &syncLog{}
	var dropped atomic.Int64
	rec := New(sink, Options{BatchSize: 2, Interval: 5 * time.Millisecond, Retry: 6,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), OnDrop: func(n int) { dropped.Add(int64(n)) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()

	for i := range 10 {
		if !rec.Record(Event{KeyID: "k", Time: day0.Add(time.Duration(i) * time.Minute), Path: "/p"}) {
			t.Fatalf("Record %d refused", i)
		}
	}
	waitUntil(t, func() bool { return dropped.Load() == 4 })
	if n := len(sink.accepted()); n != 0 {
		t.Fatalf("the sink accepted %d events while down", n)
	}
	sink.down.Store(false)
	waitUntil(t, func() bool { return len(sink.accepted()) == 6 })
	cancel()
	<-done

	got := sink.accepted()
	for i, e := range got {
		if want := day0.Add(time.Duration(i) * time.Minute); !e.Time.Equal(want) {
			t.Errorf("event %d written with time %s, want %s (its own, in order)", i, e.Time, want)
		}
	}
	if rec.Dropped() != 4 {
		t.Errorf("Dropped = %d, want 4", rec.Dropped())
	}
	if n := strings.Count(logs.String(), "retry buffer full"); n != 1 {
		t.Errorf("the drop was logged %d times, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "activity write failed"); n != 1 {
		t.Errorf("the failed write was logged %d times, want once per outage", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
