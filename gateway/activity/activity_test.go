package activity

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store/redistest"
)

var day0 = time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)

func sinks(t *testing.T) map[string]Sink {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return map[string]Sink{"memory": NewMemorySink(), "redis": NewRedisSink(rdb, "t:")}
}

func TestSinkContract(t *testing.T) {
	for name, s := range sinks(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var batch []Event
			for i := range Keep + 5 { // more than Keep: the oldest 5 must go
				batch = append(batch, Event{KeyID: "key_a", Time: day0.Add(time.Duration(i) * time.Second), Method: "GET", Path: fmt.Sprintf("/r/%d", i), Route: "r", Status: 200, ClientIP: "10.0.0.1"})
			}
			batch = append(batch, Event{KeyID: "key_b", Time: day0, Method: "POST", Path: "/b", Status: 201})
			fresh, err := s.Write(ctx, batch[:600])
			if err != nil {
				t.Fatal(err)
			}
			if len(fresh) != 1 || fresh[0].KeyID != "key_a" || fresh[0].ClientIP != "10.0.0.1" || fresh[0].Path != "/r/0" {
				t.Errorf("first batch: new IPs = %+v, want key_a from 10.0.0.1 once (its first event)", fresh)
			}
			if fresh, err = s.Write(ctx, batch[600:]); err != nil || len(fresh) != 0 {
				t.Errorf("second batch from the same IP: new IPs = %+v, %v; want none", fresh, err)
			}

			got, err := s.Recent(ctx, "key_a", 2000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != Keep {
				t.Fatalf("Recent kept %d events, want %d", len(got), Keep)
			}
			if got[0].Path != fmt.Sprintf("/r/%d", Keep+4) || got[Keep-1].Path != "/r/5" {
				t.Errorf("Recent = newest %s ... oldest %s, want /r/%d ... /r/5", got[0].Path, got[Keep-1].Path, Keep+4)
			}
			if got[0].Status != 200 || got[0].ClientIP != "10.0.0.1" || got[0].Route != "r" || got[0].KeyID != "key_a" {
				t.Errorf("Recent[0] = %+v, fields lost", got[0])
			}
			if few, _ := s.Recent(ctx, "key_a", 3); len(few) != 3 || few[0].Path != got[0].Path {
				t.Errorf("Recent(3) = %d events starting %v", len(few), few)
			}
			if none, _ := s.Recent(ctx, "key_none", 10); len(none) != 0 {
				t.Errorf("Recent(unknown) = %v, want none", none)
			}

			fresh, err = s.Write(ctx, []Event{{KeyID: "key_c", Time: day0, ClientIP: "10.0.0.2"}, {KeyID: "key_c", Time: day0, ClientIP: "10.0.0.2"}, {KeyID: "key_a", Time: day0, ClientIP: "10.0.0.2"}})
			if err != nil || len(fresh) != 2 {
				t.Errorf("new IPs = %+v, %v; want key_c and key_a from 10.0.0.2, once each", fresh, err)
			}

			// 30 min before midnight: the first 1,800 s fall on the 20th, the rest on the 21st.
			days, err := s.Daily(ctx, "key_a", 3, day0.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := []Day{{"2026-11-19", 0}, {"2026-11-20", Keep + 6}, {"2026-11-21", 0}} // Keep+5, and key_a once more from 10.0.0.2
			if fmt.Sprint(days) != fmt.Sprint(want) {
				t.Errorf("Daily = %v, want %v", days, want)
			}
			if b, _ := s.Daily(ctx, "key_b", 1, day0); len(b) != 1 || b[0].Requests != 1 {
				t.Errorf("Daily(key_b) = %v, want 1 request on %s", b, day0.Format(dayLayout))
			}
		})
	}
}

// recordingSink counts writes, for the Recorder's own behaviour.
type recordingSink struct {
	mu      sync.Mutex
	batches [][]Event
	*MemorySink
}

func (r *recordingSink) Write(ctx context.Context, b []Event) ([]Event, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]Event(nil), b...))
	r.mu.Unlock()
	return r.MemorySink.Write(ctx, b)
}

func (r *recordingSink) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, len(b))
	}
	return out
}

func TestRecordNeverBlocks(t *testing.T) {
	rec := New(NewMemorySink(), Options{Buffer: 2})
	for i := range 5 {
		ok := rec.Record(Event{KeyID: "k", Time: day0})
		if want := i < 2; ok != want {
			t.Errorf("Record #%d = %v, want %v", i, ok, want)
		}
	}
	if rec.Dropped() != 3 {
		t.Errorf("Dropped = %d, want 3", rec.Dropped())
	}
}

func TestRunBatchesAndFlushesOnStop(t *testing.T) {
	sink := &recordingSink{MemorySink: NewMemorySink()}
	var touchMu sync.Mutex
	touched := map[string]time.Time{}
	rec := New(sink, Options{BatchSize: 4, Interval: time.Hour, Touch: func(_ context.Context, m map[string]time.Time) error {
		touchMu.Lock()
		defer touchMu.Unlock()
		for k, v := range m {
			touched[k] = v
		}
		return nil
	}})
	for i := range 6 {
		rec.Record(Event{KeyID: fmt.Sprintf("k%d", i%2), Time: day0.Add(time.Duration(i) * time.Minute)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for rec.Written() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling with a bound, not synchronisation
	}
	cancel()
	<-done
	if got := fmt.Sprint(sink.sizes()); got != "[4 2]" {
		t.Errorf("batch sizes = %s, want [4 2] (one full batch, the rest flushed on stop)", got)
	}
	if rec.Written() != 6 {
		t.Errorf("Written = %d, want 6", rec.Written())
	}
	touchMu.Lock()
	defer touchMu.Unlock()
	if !touched["k0"].Equal(day0.Add(4*time.Minute)) || !touched["k1"].Equal(day0.Add(5*time.Minute)) {
		t.Errorf("last used = %v, want k0 at +4m and k1 at +5m", touched)
	}
}

func TestRunWritesOnInterval(t *testing.T) {
	sink := &recordingSink{MemorySink: NewMemorySink()}
	rec := New(sink, Options{BatchSize: 100, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.Run(ctx)
	rec.Record(Event{KeyID: "k", Time: day0})
	deadline := time.Now().Add(5 * time.Second)
	for rec.Written() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if rec.Written() != 1 {
		t.Fatalf("a lone event was not written by the interval flush")
	}
}

// TestMemoryRingWrapsManyTimes: past several wraps the ring still returns the newest Keep
// events, newest first.
func TestMemoryRingWrapsManyTimes(t *testing.T) {
	s := NewMemorySink()
	total := 2*Keep + 7
	for i := range total {
		if _, err := s.Write(context.Background(), []Event{{KeyID: "k", Time: day0, Path: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Recent(context.Background(), "k", Keep+10)
	if len(got) != Keep {
		t.Fatalf("len = %d, want %d", len(got), Keep)
	}
	for i, e := range got {
		if want := fmt.Sprint(total - 1 - i); e.Path != want {
			t.Fatalf("Recent[%d] = %s, want %s", i, e.Path, want)
		}
	}
}
