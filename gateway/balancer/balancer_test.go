package balancer

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// clock is a settable time for ejection tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func targets(n int, m Metrics) []*Target {
	ts := make([]*Target, n)
	for i := range ts {
		ts[i] = NewTarget("api", &url.URL{Scheme: "http", Host: fmt.Sprintf("10.0.0.%d:9000", i+1)}, m, nil)
	}
	return ts
}

// TestRoundRobinSkipsEjected: targets take turns; an ejected one is skipped until its
// time is up, then takes its turns again.
func TestRoundRobinSkipsEjected(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	ts := targets(3, Metrics{})
	p := New(Options{Targets: ts, MaxFailures: 2, EjectFor: time.Hour, Now: c.now})
	seq := func(n int) string {
		s := ""
		for range n {
			s += p.Pick().Label[7:8]
		}
		return s
	}
	if got := seq(6); got != "123123" {
		t.Fatalf("round robin = %s, want 123123", got)
	}
	p.Report(ts[1], ConnectError)
	if got := seq(3); got != "123" {
		t.Fatalf("after one of two failures = %s, want 123 (still in rotation)", got)
	}
	p.Report(ts[1], Success) // clears the count
	p.Report(ts[1], Error)
	if ts[1].Ejected(c.t) {
		t.Fatal("ejected after a success broke the run of failures")
	}
	p.Report(ts[1], ConnectError)
	if !ts[1].Ejected(c.t) {
		t.Fatal("not ejected after two failures in a row")
	}
	if got := seq(6); strings.Count(got, "1") != 3 || strings.Count(got, "3") != 3 {
		t.Fatalf("with 2 ejected = %s, want 1 and 3 three times each", got)
	}
	p.Report(ts[0], Timeout) // a timeout does not count against the target
	p.Report(ts[0], Timeout)
	if ts[0].Ejected(c.t) {
		t.Fatal("timeouts ejected a target")
	}
	c.t = c.t.Add(time.Hour)
	if got := seq(3); strings.Count(got, "2") != 1 {
		t.Fatalf("after eject_for = %s, want 2 back in its turn", got)
	}
}

// TestLeastRequests: the target with the fewest requests in flight is picked; ties are
// broken in turn.
func TestLeastRequests(t *testing.T) {
	ts := targets(3, Metrics{})
	p := New(Options{Targets: ts, LeastRequests: true, EjectFor: time.Second})
	ts[0].Acquire()
	ts[0].Acquire()
	ts[2].Acquire()
	for range 5 {
		if got := p.Pick(); got != ts[1] {
			t.Fatalf("picked %s, want the idle 10.0.0.2", got.Label)
		}
	}
	ts[1].Acquire()
	ts[1].Acquire()
	if got := p.Pick(); got != ts[2] {
		t.Fatalf("picked %s, want 10.0.0.3 (1 in flight)", got.Label)
	}
	ts[0].Release()
	ts[1].Release()
	seen := map[*Target]int{} // 1, 1, 1 in flight: all tie
	for range 6 {
		seen[p.Pick()]++
	}
	if len(seen) != 3 {
		t.Errorf("ties went to %d targets, want all 3 in turn", len(seen))
	}
}

// TestAllEjected: Pick never returns nil; with every target ejected it returns the one
// whose ejection ends first, and PickOther has nothing to offer.
func TestAllEjected(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	ts := targets(2, Metrics{})
	p := New(Options{Targets: ts, MaxFailures: 1, EjectFor: time.Hour, Now: c.now})
	p.Report(ts[1], ConnectError)
	c.t = c.t.Add(time.Minute)
	p.Report(ts[0], ConnectError)
	for range 3 {
		if got := p.Pick(); got != ts[1] {
			t.Fatalf("picked %s, want 10.0.0.2 (its ejection ends first)", got.Label)
		}
	}
	if got := p.PickOther(ts[1]); got != nil {
		t.Fatalf("PickOther = %s, want none", got.Label)
	}
	p.Report(ts[1], Success) // back at once
	if ts[1].Ejected(c.t) {
		t.Fatal("a success left the target ejected")
	}
}

// TestMetrics: each outcome is counted under the target's host:port; the health gauge
// follows ejection.
func TestMetrics(t *testing.T) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"upstream", "target", "outcome"})
	healthy := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "h"}, []string{"upstream", "target"})
	ts := []*Target{NewTarget("api", &url.URL{Scheme: "https", Host: "api.internal"}, Metrics{reqs, healthy}, nil)}
	if ts[0].Label != "api.internal:443" {
		t.Errorf("label = %q, want api.internal:443", ts[0].Label)
	}
	p := New(Options{Targets: ts, MaxFailures: 1, EjectFor: time.Hour})
	p.Report(ts[0], Success)
	p.Report(ts[0], ConnectError)
	p.Report(ts[0], Canceled)
	if v := testutil.ToFloat64(reqs.WithLabelValues("api", "api.internal:443", "success")); v != 1 {
		t.Errorf("success = %v", v)
	}
	if v := testutil.ToFloat64(reqs.WithLabelValues("api", "api.internal:443", "connect_error")); v != 1 {
		t.Errorf("connect_error = %v", v)
	}
	if v := testutil.ToFloat64(healthy.WithLabelValues("api", "api.internal:443")); v != 0 {
		t.Errorf("healthy = %v, want 0 after ejection", v)
	}
	if n := testutil.CollectAndCount(reqs); n != 4 {
		t.Errorf("%d series, want the 4 outcomes (canceled is not counted)", n)
	}
}

// BenchmarkPick measures one pick over 8 targets, from many goroutines.
func BenchmarkPick(b *testing.B) {
	for _, least := range []bool{false, true} {
		b.Run(fmt.Sprintf("least_requests=%v", least), func(b *testing.B) {
			p := New(Options{Targets: targets(8, Metrics{}), LeastRequests: least, EjectFor: time.Second})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t := p.Pick()
					t.Acquire()
					t.Release()
				}
			})
		})
	}
}
