package gateway_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
)

// syncBuffer is a log sink safe for the gateway's goroutines.
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

// TestKeyUsedFromNewIPIsAudited: the first request with a key from a client IP is an audit
// event (log line and counter); later requests from the same IP are not.
func TestKeyUsedFromNewIPIsAudited(t *testing.T) {
	up := startUpstream(t, "api", nil)
	key, _ := apikey.Generate("sk", apikey.Live)
	yaml := gatewayHeader + `
bootstrap: {admin_key: "` + key + `"}
upstreams: {api: {url: "${UP_api}"}}
routes: [{name: r, match: ["GET /r"], upstream: api}]
`
	cfg, err := config.Parse("t.yaml", []byte(yaml), env(map[string]*upstream{"api": up}, nil))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for range 3 {
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/r", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	eventually(t, "new-IP audit event", func() bool {
		return metricValue(t, reg, "authgate_api_key_events_total", map[string]string{"event": "used_from_new_ip"}) == 1
	})
	if n := strings.Count(logs.String(), `"event":"used_from_new_ip"`); n != 1 {
		t.Errorf("%d new-IP audit lines, want 1 (three requests, one IP)", n)
	}
	if strings.Contains(logs.String(), key) {
		t.Error("the key's plaintext appears in the log")
	}
}
