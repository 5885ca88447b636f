package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint is one receiver (notify.webhooks[i]).
type Endpoint struct {
	URL    string
	Secret []byte
	// Events are the types sent here; empty: all.
	Events []string
}

// wants reports whether the endpoint receives events of type typ.
func (e Endpoint) wants(typ string) bool { return len(e.Events) == 0 || slices.Contains(e.Events, typ) }

// Results counted in authgate_webhook_deliveries_total{result}.
const (
	ResultDelivered = "delivered" // a 2xx answer
	ResultRetried   = "retried"   // an attempt failed and another one follows
	ResultFailed    = "failed"    // every attempt failed: the event is lost for this receiver
	ResultDropped   = "dropped"   // the queue was full: never attempted
)

// Options configure a Notifier. Zero values take the defaults.
type Options struct {
	// Endpoints returns the receivers of the configuration being served, read at each
	// Emit so that a reload applies to the next event.
	Endpoints func() []Endpoint
	// Queue bounds the deliveries waiting for a worker. Default: 1000. When it is full,
	// deliveries are dropped and counted: Emit never waits.
	Queue int
	// Workers deliver in parallel. Default: 4.
	Workers int
	// Attempts per delivery. Default: 5.
	Attempts int
	// Backoff is the wait before the first retry; it doubles for each next one. Default: 1s.
	Backoff time.Duration
	// Timeout bounds one attempt (connect, send, answer). Default: 5s.
	Timeout time.Duration
	// Client sends the deliveries. Default: one that follows no redirects.
	Client *http.Client
	// Deliveries counts deliveries by event and result (authgate_webhook_deliveries_total).
	Deliveries *prometheus.CounterVec
	// Logger reports failing receivers, once per burst. Default: discard.
	Logger *slog.Logger
	// Now is the clock of signatures. Default: time.Now.
	Now func() time.Time
}

// Notifier queues events for the receivers that want them and delivers them with a pool
// of workers. Emit is safe for concurrent use and never blocks; Run must be running for
// anything to be delivered.
type Notifier struct {
	o     Options
	queue chan delivery

	mu      sync.Mutex
	failing map[string]bool // receiver URL -> its last delivery failed (logged once)
	full    bool            // the queue was full at the last Emit (logged once)
}

type delivery struct {
	ep   Endpoint
	ev   Event
	body []byte
}

// New returns a Notifier.
func New(o Options) *Notifier {
	if o.Endpoints == nil {
		o.Endpoints = func() []Endpoint { return nil }
	}
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Deliveries == nil {
		o.Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_webhook_deliveries_total"}, []string{"event", "result"})
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{o: o, queue: make(chan delivery, o.Queue), failing: map[string]bool{}}
}

// Wants reports whether any receiver takes events of type typ, so that callers can skip
// the work of building them.
func (n *Notifier) Wants(typ string) bool {
	for _, ep := range n.o.Endpoints() {
		if ep.wants(typ) {
			return true
		}
	}
	return false
}

// Emit queues e for every receiver that wants it and returns at once. A full queue drops
// the delivery and counts it (result "dropped"), logged once per burst: until the queue is
// at most half full again.
func (n *Notifier) Emit(ctx context.Context, e Event) {
	var body []byte
	for _, ep := range n.o.Endpoints() {
		if !ep.wants(e.Type) {
			continue
		}
		if body == nil {
			b, err := json.Marshal(e)
			if err != nil {
				n.o.Logger.ErrorContext(ctx, "webhook event not encoded", slog.String("event", e.Type), slog.String("error", err.Error()))
				return
			}
			body = b
		}
		select {
		case n.queue <- delivery{ep: ep, ev: e, body: body}:
			if len(n.queue) <= cap(n.queue)/2 {
				// The burst ends once the queue has room again, not at the first slot a
				// worker frees, so one burst logs once.
				n.setFull(ctx, false)
			}
		default:
			n.o.Deliveries.WithLabelValues(e.Type, ResultDropped).Inc()
			n.setFull(ctx, true)
		}
	}
}

func (n *Notifier) setFull(ctx context.Context, full bool) {
	n.mu.Lock()
	was := n.full
	n.full = full
	n.mu.Unlock()
	if full && !was {
		n.o.Logger.ErrorContext(ctx, "webhook queue full: deliveries are dropped (counted in authgate_webhook_deliveries_total{result=\"dropped\"})",
			slog.Int("queue", cap(n.queue)))
	}
}

// Run delivers until ctx is done. Deliveries still queued or retrying then are given up:
// the process is stopping.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range n.o.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-n.queue:
					n.deliver(ctx, d)
				}
			}
		})
	}
	wg.Wait()
}

// deliver makes up to Attempts attempts, waiting Backoff, 2×Backoff, … in between.
func (n *Notifier) deliver(ctx context.Context, d delivery) {
	wait := n.o.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = n.attempt(ctx, d); err == nil {
			n.o.Deliveries.WithLabelValues(d.ev.Type, ResultDelivered).Inc()
			n.setFailing(ctx, d, nil)
			return
		}
		if attempt == n.o.Attempts || ctx.Err() != nil {
			break
		}
		n.o.Deliveries.WithLabelValues(d.ev.Type, ResultRetried).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait *= 2
	}
	n.o.Deliveries.WithLabelValues(d.ev.Type, ResultFailed).Inc()
	n.setFailing(ctx, d, err)
}

// setFailing logs a receiver's first failed delivery after a success (not each attempt,
// not each failed delivery of a burst), and its recovery.
func (n *Notifier) setFailing(ctx context.Context, d delivery, err error) {
	n.mu.Lock()
	was := n.failing[d.ep.URL]
	if err != nil {
		n.failing[d.ep.URL] = true
	} else {
		delete(n.failing, d.ep.URL)
	}
	n.mu.Unlock()
	switch {
	case err != nil && !was:
		n.o.Logger.ErrorContext(ctx, "webhook deliveries failing; further failures to this receiver are counted, not logged, until one succeeds",
			slog.String("receiver", Redact(d.ep.URL)), slog.String("event", d.ev.Type), slog.String("event_id", d.ev.ID),
			slog.Int("attempts", n.o.Attempts), slog.String("error", err.Error()))
	case err == nil && was:
		n.o.Logger.InfoContext(ctx, "webhook deliveries succeed again", slog.String("receiver", Redact(d.ep.URL)))
	}
}

// attempt POSTs the delivery once; any answer but 2xx is a failure.
func (n *Notifier) attempt(ctx context.Context, d delivery) error {
	actx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, d.ep.URL, bytes.NewReader(d.body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "authgate-webhook/1")
	req.Header.Set("Authgate-Event", d.ev.Type)
	req.Header.Set("Authgate-Delivery", d.ev.ID)
	req.Header.Set(SignatureHeader, Sign(d.ep.Secret, n.o.Now(), d.body))
	resp, err := n.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is logged apart, redacted
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// Redact is u without its user info and query, which may hold tokens: what logs show.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}
