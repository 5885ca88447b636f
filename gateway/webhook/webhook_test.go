package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/apikey"
)

func TestSignAndVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"evt_1"}`)
	at := time.Unix(1772366400, 0)
	h := Sign(secret, at, body)
	if !strings.HasPrefix(h, "t=1772366400,v1=") || len(h) != len("t=1772366400,v1=")+64 {
		t.Fatalf("Sign = %q, want t=<unix>,v1=<64 hex>", h)
	}
	for _, tt := range []struct {
		name   string
		header string
		secret []byte
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", h, secret, body, at.Add(time.Minute), nil},
		{"extra signatures and spaces", "t=1772366400, v1=00ff, " + strings.TrimPrefix(h, "t=1772366400,"), secret, body, at, nil},
		{"wrong secret", h, []byte("other"), body, at, ErrBadSignature},
		{"changed body", h, secret, []byte(`{"id":"evt_2"}`), at, ErrBadSignature},
		{"changed timestamp", strings.Replace(h, "t=1772366400", "t=1772366401", 1), secret, body, at, ErrBadSignature},
		{"no v1", "t=1772366400", secret, body, at, ErrBadSignature},
		{"garbage", "nonsense", secret, body, at, ErrBadSignature},
		{"too old", h, secret, body, at.Add(6 * time.Minute), ErrTooOld},
		{"from the future", h, secret, body, at.Add(-6 * time.Minute), ErrTooOld},
	} {
		if err := Verify(tt.header, tt.secret, tt.body, tt.now, 5*time.Minute); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestEventCarriesNoSecret: KeyOf keeps public fields only (not the start, not a hash).
func TestEventCarriesNoSecret(t *testing.T) {
	plain, _ := apikey.Generate("sk", apikey.Live)
	k := apikey.Key{ID: apikey.NewID(), Name: "n", Type: apikey.Personal, Environment: apikey.Live,
		Start: plain[:apikey.StartLen], CreatedAt: time.Now()}
	b, _ := json.Marshal(NewEvent(KeyCreated, time.Now(), Data{Key: KeyOf(k)}))
	if bytes.Contains(b, []byte(plain[:apikey.StartLen])) || bytes.Contains(b, []byte("start")) {
		t.Errorf("event %s shows the key's start", b)
	}
	if !bytes.Contains(b, []byte(k.ID)) || !bytes.Contains(b, []byte(`"scopes":[]`)) {
		t.Errorf("event %s lacks the key id or its scopes", b)
	}
}

// TestEmitNeverBlocksAndDrops: with every worker stuck on a receiver that never answers,
// Emit returns at once; deliveries beyond the queue are dropped, counted, and logged once.
func TestEmitNeverBlocksAndDrops(t *testing.T) {
	release := make(chan struct{})
	var inFlight sync.WaitGroup
	inFlight.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		once.Do(inFlight.Done)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	var logs bytes.Buffer
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"event", "result"})
	n := New(Options{Endpoints: func() []Endpoint {
		return []Endpoint{{URL: srv.URL, Secret: []byte("s")}, {URL: srv.URL + "/only-revoked", Secret: []byte("s"), Events: []string{KeyRevoked}}}
	}, Queue: 2, Workers: 1, Timeout: time.Hour, Deliveries: deliveries, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Emit(ctx, NewEvent(KeyCreated, time.Now(), Data{}))
	inFlight.Wait() // the only worker now hangs
	done := make(chan struct{})
	go func() {
		for range 10 {
			n.Emit(ctx, NewEvent(KeyCreated, time.Now(), Data{}))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a bound on a hang, not a speed assertion
		t.Fatal("Emit blocked on a full queue")
	}
	if got := testutil.ToFloat64(deliveries.WithLabelValues(KeyCreated, ResultDropped)); got != 8 {
		t.Errorf("dropped = %v, want 8 (10 emitted, a queue of 2, the worker busy with the first)", got)
	}
	if c := strings.Count(logs.String(), "webhook queue full"); c != 1 {
		t.Errorf("queue-full logged %d times, want once", c)
	}
	if !n.Wants(KeyRevoked) || !n.Wants(KeyExpiring) {
		t.Errorf("Wants: an endpoint without events takes every type")
	}
}

// TestRetriesThenFailsLoggedOnce: a receiver answering 500 gets Attempts attempts per
// delivery, each signed, with the same delivery id; each lost delivery is counted, the
// burst is logged once, and a success logs the recovery.
func TestRetriesThenFailsLoggedOnce(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]int{}
	healthy := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(r.Header.Get(SignatureHeader), []byte("s"), body, time.Now(), time.Minute); err != nil {
			t.Errorf("delivery not signed: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		ids[r.Header.Get("Authgate-Delivery")]++
		if !healthy {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	var logs syncBuffer
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"event", "result"})
	n := New(Options{Endpoints: func() []Endpoint { return []Endpoint{{URL: srv.URL + "?token=hidden", Secret: []byte("s")}} },
		Workers: 1, Attempts: 3, Backoff: time.Millisecond, Deliveries: deliveries, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	for range 3 {
		n.Emit(ctx, NewEvent(KeyRevoked, time.Now(), Data{}))
	}
	waitFor(t, func() bool { return testutil.ToFloat64(deliveries.WithLabelValues(KeyRevoked, ResultFailed)) == 3 })
	if r := testutil.ToFloat64(deliveries.WithLabelValues(KeyRevoked, ResultRetried)); r != 6 {
		t.Errorf("retried = %v, want 6 (2 per delivery)", r)
	}
	mu.Lock()
	for id, c := range ids {
		if c != 3 {
			t.Errorf("delivery %s attempted %d times, want 3", id, c)
		}
	}
	healthy = true
	mu.Unlock()
	n.Emit(ctx, NewEvent(KeyRevoked, time.Now(), Data{}))
	waitFor(t, func() bool { return testutil.ToFloat64(deliveries.WithLabelValues(KeyRevoked, ResultDelivered)) == 1 })
	waitFor(t, func() bool { return strings.Contains(logs.String(), "succeed again") })
	if c := strings.Count(logs.String(), "webhook deliveries failing"); c != 1 {
		t.Errorf("failing logged %d times for 3 lost deliveries, want once", c)
	}
	if strings.Contains(logs.String(), "hidden") {
		t.Errorf("the receiver's query was logged: %s", logs.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
