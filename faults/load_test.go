//go:build faults

package faults

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reqIDHeader carries each load request's number to the upstream, which records which
// requests reached it.
const reqIDHeader = "X-Fault-Req"

// upstream is the API behind both gateways. It counts the requests it receives by
// X-Auth-Key-Id and X-Auth-Subject and remembers each request number it saw.
type upstream struct {
	srv *httptest.Server

	mu        sync.Mutex
	seen      map[int64]bool
	byKey     map[string]int
	bySubject map[string]int
}

// newUpstream starts the upstream; it is closed when t ends.
func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{seen: map[int64]bool{}, byKey: map[string]int{}, bySubject: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		if id, err := strconv.ParseInt(r.Header.Get(reqIDHeader), 10, 64); err == nil {
			u.seen[id] = true
		}
		if k := r.Header.Get("X-Auth-Key-Id"); k != "" {
			u.byKey[k]++
		}
		if s := r.Header.Get("X-Auth-Subject"); s != "" {
			u.bySubject[s]++
		}
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// hostPort is the upstream's address.
func (u *upstream) hostPort() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// reached reports whether request id arrived.
func (u *upstream) reached(id int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// keyHits is how many requests arrived as key id.
func (u *upstream) keyHits(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.byKey[id]
}

// credential is one class of load request: where it goes and what it sends.
type credential struct {
	class string
	path  string
	auth  string // Authorization value, "" for none
}

// result is one load request.
type result struct {
	id      int64
	sent    time.Time
	replica int
	class   string
	status  int // 0: no answer (transport error or client timeout)
	latency time.Duration
}

// done is when the answer (or the failure) came.
func (r result) done() time.Time { return r.sent.Add(r.latency) }

// ok reports a 2xx answer.
func (r result) ok() bool { return r.status >= 200 && r.status < 300 }

// failed reports a 5xx or no answer.
func (r result) failed() bool { return r.status == 0 || r.status >= 500 }

// loadGen sends the load: clients goroutines, each pacing its requests, spread over every
// (replica, credential) pair.
type loadGen struct {
	bases  []string
	creds  []credential
	client *http.Client
	seq    atomic.Int64

	mu      sync.Mutex
	results []result
}

// loadClientTimeout bounds one load request: a stall shows as a long latency, and beyond
// this as status 0.
const loadClientTimeout = 10 * time.Second

func newLoadGen(bases []string, creds []credential) *loadGen {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	return &loadGen{bases: bases, creds: creds, client: &http.Client{Transport: tr, Timeout: loadClientTimeout}}
}

// run sends requests until ctx ends: clients goroutines, each one request per pace.
func (l *loadGen) run(ctx context.Context, clients int, pace time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	pairs := len(l.bases) * len(l.creds)
	for c := range clients {
		wg.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for n := c * 5; ; n++ {
				i := n % pairs
				l.send(ctx, i%len(l.bases), l.creds[(i/len(l.bases))%len(l.creds)])
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return &wg
}

// send makes one request and records it. Requests cut short by the end of the load are
// not recorded.
func (l *loadGen) send(ctx context.Context, replica int, c credential) {
	id := l.seq.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.bases[replica]+c.path, nil)
	if err != nil {
		return
	}
	req.Header.Set(reqIDHeader, strconv.FormatInt(id, 10))
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	start := time.Now()
	status := 0
	resp, err := l.client.Do(req)
	if err == nil {
		status = resp.StatusCode
		_, _ = bufio.NewReader(resp.Body).WriteTo(discard{})
		resp.Body.Close()
	}
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	l.results = append(l.results, result{id: id, sent: start, replica: replica, class: c.class, status: status, latency: time.Since(start)})
	l.mu.Unlock()
}

// snapshot returns the results so far.
func (l *loadGen) snapshot() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.results...)
}

// discard is io.Discard as a writer type for WriteTo.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// sample is one scrape of a replica's /metrics.
type sample struct {
	at       time.Time // when the answer arrived
	replica  int
	ok       bool    // the scrape answered 200
	up       float64 // authgate_store_up
	fallback float64 // authgate_rate_limit_fallback
	trusted  float64 // authgate_credential_cache_trusted{cache="keys"}; -1 when absent
}

// trustedSeries is the key cache's trust gauge (present once the product exports it).
const trustedSeries = `authgate_credential_cache_trusted{cache="keys"}`

// pollMetrics scrapes every replica's /metrics every interval until ctx ends.
func pollMetrics(ctx context.Context, ops []string, interval time.Duration) (*sync.WaitGroup, func() []sample) {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []sample
	)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	for rep, base := range ops {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				s := scrape(ctx, client, base)
				if ctx.Err() != nil {
					return
				}
				s.replica = rep
				mu.Lock()
				all = append(all, s)
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return &wg, func() []sample {
		mu.Lock()
		defer mu.Unlock()
		return append([]sample(nil), all...)
	}
}

// scrape reads the three gauges from one /metrics answer.
func scrape(ctx context.Context, c *http.Client, ops string) sample {
	s := sample{trusted: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ops+"/metrics", nil)
	if err != nil {
		s.at = time.Now()
		return s
	}
	resp, err := c.Do(req)
	if err != nil {
		s.at = time.Now()
		return s
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, found := strings.Cut(line, " ")
		if !found || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "authgate_store_up":
			s.up = f
		case "authgate_rate_limit_fallback":
			s.fallback = f
		case trustedSeries:
			s.trusted = f
		}
	}
	s.at = time.Now()
	s.ok = resp.StatusCode == http.StatusOK && sc.Err() == nil
	return s
}
