// Package balancer spreads an upstream's requests over its targets (round robin or least
// requests) and keeps their passive health: a target whose connections fail is ejected
// for a while, then tried again. Picking a target reads a few atomics per target; there is
// no lock on the request path.
package balancer

import (
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is how one attempt at a target ended.
type Outcome int

// The outcomes of an attempt. ConnectError and Error count against the target's health;
// Timeout and Canceled do not (a slow answer or a client that left says nothing about the
// target's reachability).
const (
	Success      Outcome = iota // a response arrived, whatever its status
	ConnectError                // no connection: refused, unreachable, dial timeout
	Error                       // the connection failed after it was made: reset, TLS, malformed answer
	Timeout                     // the upstream's timeout passed
	Canceled                    // the client went away
)

// outcomeLabels are the values of the outcome label, by Outcome (Canceled is not counted).
var outcomeLabels = [...]string{Success: "success", ConnectError: "connect_error", Error: "error", Timeout: "timeout"}

// OutcomeLabels are the values authgate_upstream_requests_total's outcome label takes.
func OutcomeLabels() []string { return outcomeLabels[:] }

// Target is one server of an upstream. A Target outlives a configuration reload that
// keeps it, with its health and in-flight count, so it is shared by the pools of every
// configuration generation that names it.
type Target struct {
	// URL is the configured target URL.
	URL *url.URL
	// Label is URL's host:port: the target label of metrics and logs.
	Label string

	inflight atomic.Int64
	failures atomic.Int64 // transport failures in a row
	ejected  atomic.Int64 // UnixNano until which the target is out of rotation; 0: in rotation

	upstream string
	logger   *slog.Logger
	counts   [len(outcomeLabels)]prometheus.Counter // nil without metrics
	healthy  prometheus.Gauge                       // nil without metrics
}

// Metrics are the collectors a Target reports to; nil vectors mean no metrics.
type Metrics struct {
	Requests *prometheus.CounterVec // upstream, target, outcome
	Healthy  *prometheus.GaugeVec   // upstream, target
}

// NewTarget returns a healthy target of upstream with no request in flight.
func NewTarget(upstream string, u *url.URL, m Metrics, logger *slog.Logger) *Target {
	t := &Target{URL: u, Label: hostPort(u), upstream: upstream, logger: logger}
	if m.Requests != nil {
		for o, l := range outcomeLabels {
			t.counts[o] = m.Requests.WithLabelValues(upstream, t.Label, l)
		}
	}
	if m.Healthy != nil {
		t.healthy = m.Healthy.WithLabelValues(upstream, t.Label)
		t.healthy.Set(1)
	}
	return t
}

// hostPort is u's host with the scheme's default port when it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// Upstream is the name of the upstream t belongs to.
func (t *Target) Upstream() string { return t.upstream }

// InFlight is the number of requests at the target now.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Ejected reports whether the target is out of rotation at now.
func (t *Target) Ejected(now time.Time) bool {
	u := t.ejected.Load()
	return u != 0 && now.UnixNano() < u
}

// Acquire counts a request in flight at t; Release ends it.
func (t *Target) Acquire() { t.inflight.Add(1) }

// Release ends a request Acquire counted.
func (t *Target) Release() { t.inflight.Add(-1) }

// Options configure a Pool.
type Options struct {
	// Targets are the servers, in configured order. At least one.
	Targets []*Target
	// LeastRequests picks the target with the fewest requests in flight (ties in turn);
	// otherwise targets take turns (round robin).
	LeastRequests bool
	// MaxFailures transport failures in a row eject a target (at least 1).
	MaxFailures int
	// EjectFor is how long an ejected target stays out of rotation.
	EjectFor time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pool balances over one upstream's targets. It is safe for concurrent use.
type Pool struct {
	targets     []*Target
	least       bool
	maxFailures int64
	ejectFor    time.Duration
	now         func() time.Time
	next        atomic.Uint64
}

// New returns a Pool over o.Targets.
func New(o Options) *Pool {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Pool{targets: o.Targets, least: o.LeastRequests, maxFailures: int64(max(o.MaxFailures, 1)),
		ejectFor: o.EjectFor, now: o.Now}
}

// Targets are the pool's targets in configured order.
func (p *Pool) Targets() []*Target { return p.targets }

// Pick returns the target for a new attempt, never nil. Of the targets in rotation, the
// next in turn (round robin) or the one with the fewest requests in flight. When every
// target is ejected, the one whose ejection ends first is tried anyway: a pool is never
// empty, and a target that came back is found by the next request rather than after its
// ejection ends.
func (p *Pool) Pick() *Target {
	if len(p.targets) == 1 {
		return p.targets[0]
	}
	if t := p.pick(nil); t != nil {
		return t
	}
	soonest := p.targets[0]
	for _, t := range p.targets[1:] {
		if t.ejected.Load() < soonest.ejected.Load() {
			soonest = t
		}
	}
	return soonest
}

// PickOther returns a target in rotation other than not, for a second attempt; nil when
// there is none.
func (p *Pool) PickOther(not *Target) *Target {
	if len(p.targets) == 1 {
		return nil
	}
	return p.pick(not)
}

// pick is Pick among the targets in rotation other than not; nil when there is none.
func (p *Pool) pick(not *Target) *Target {
	n := uint64(len(p.targets))
	start := p.next.Add(1) - 1
	var now int64 // read only when some target was ejected
	var best *Target
	for i := range n {
		t := p.targets[(start+i)%n]
		if t == not {
			continue
		}
		if u := t.ejected.Load(); u != 0 {
			if now == 0 {
				now = p.now().UnixNano()
			}
			if now < u {
				continue
			}
		}
		if !p.least {
			if i > 0 {
				// The next pick starts after this one: the turns of the targets skipped
				// do not all fall to the target after them.
				p.next.Add(i)
			}
			return t
		}
		if best == nil || t.inflight.Load() < best.inflight.Load() {
			best = t
		}
	}
	return best
}

// Report records how an attempt at t ended: counted per outcome, and for its health.
// ConnectError and Error in a row up to MaxFailures eject t for EjectFor; a Success
// clears the count and puts an ejected target back into rotation at once.
func (p *Pool) Report(t *Target, o Outcome) {
	if int(o) < len(t.counts) && t.counts[o] != nil {
		t.counts[o].Inc()
	}
	switch o {
	case Success:
		if t.failures.Load() != 0 {
			t.failures.Store(0)
		}
		if u := t.ejected.Load(); u != 0 && t.ejected.CompareAndSwap(u, 0) {
			t.setHealthy(true)
		}
	case ConnectError, Error:
		if t.failures.Add(1) >= p.maxFailures {
			p.eject(t)
		}
	}
}

// eject takes t out of rotation for EjectFor. Its health gauge comes back on time even
// when no request tries it.
func (p *Pool) eject(t *Target) {
	t.failures.Store(0)
	until := p.now().Add(p.ejectFor).UnixNano()
	t.ejected.Store(until)
	t.setHealthy(false)
	if t.logger != nil {
		t.logger.Warn("upstream target ejected", slog.String("upstream", t.upstream),
			slog.String("target", t.Label), slog.String("eject_for", p.ejectFor.String()))
	}
	time.AfterFunc(p.ejectFor, func() {
		if t.ejected.CompareAndSwap(until, 0) {
			t.setHealthy(true)
		}
	})
}

func (t *Target) setHealthy(ok bool) {
	if t.healthy == nil {
		return
	}
	if ok {
		t.healthy.Set(1)
	} else {
		t.healthy.Set(0)
	}
}
