package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/tracing"
	"github.com/authgate/authgate/gateway/user"
)

// tracedGateway serves a gateway on a real Redis with tracing recorded in memory, and
// trusts 192.0.2.0/24 (the in-process requests' default peer) as proxies.
func tracedGateway(t *testing.T) (*harness, *tracetest.SpanRecorder, string) {
	t.Helper()
	rs := redistest.Start(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	admin := newAdminKey(t)
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil), "live": startUpstream(t, "live", nil), "test": startUpstream(t, "test", nil)}
	getenv := env(ups, map[string]string{"REDIS_ADDR": rs.Addr(), "CACHE_TTL": "30s", "ON_STORE_ERROR": "serve_cached", "ADMIN_KEY": admin})
	cfg, err := config.Parse("test.yaml", []byte(liveConfig+`client_ip: {trusted_proxies: ["192.0.2.0/24"]}
tracing: {enabled: true}
`), getenv)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: reg, Getenv: getenv,
		PasswordParams: &user.TestParams, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitBound):
			t.Error("Serve did not return")
		}
	})
	h := &harness{t: t, s: s, reg: reg, ups: ups}
	waitFor(t, "the bootstrap admin key to work", func() bool {
		return h.do("GET", "/api/auth/api-keys/", "", "X-API-Key: "+admin).status == http.StatusOK
	})
	return h, rec, admin
}

// spansOf returns the ended spans of trace id.
func spansOf(rec *tracetest.SpanRecorder, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func oneSpan(t *testing.T, spans []sdktrace.ReadOnlySpan, kind trace.SpanKind, scope string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == kind && s.InstrumentationScope().Name == scope {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans of %s, want 1", len(found), kind, scope)
	}
	return found[0]
}

// upstreamTrace reads the traceparent the upstream received: trace id and parent span id.
func upstreamTrace(t *testing.T, h http.Header) (trace.TraceID, trace.SpanID) {
	t.Helper()
	parts := strings.Split(h.Get("Traceparent"), "-")
	if len(parts) != 4 {
		t.Fatalf("the upstream got traceparent %q", h.Get("Traceparent"))
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return tid, sid
}

const (
	gatewayScope = "github.com/authgate/authgate/gateway"
	redisScope   = "github.com/redis/go-redis/extra/redisotel"
)

// TestTracing: a request arriving from a trusted proxy with a traceparent gets a server
// span in that trace, under the proxy's span, with the route, the auth method and the
// decision; the upstream call is a client span under it; each Redis round trip of the
// (uncached) key lookup is a span of the same trace; and the upstream receives a
// traceparent of that trace naming the client span. From an untrusted peer the
// traceparent is not continued. A refused request's span says so, with the error code, and
// has no upstream span. No span attribute holds a credential.
func TestTracing(t *testing.T) {
	h, rec, admin := tracedGateway(t)
	key := h.createKeyWith(admin, `{"name":"traced","scopes":["reports:read"]}`)
	bogus := newAdminKey(t)
	api := h.ups["api"]

	// Trusted proxy, good key: continued trace.
	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	parentID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	api.reset()
	a := h.do("GET", "/api/v1/reports/", "192.0.2.10:5000", "X-API-Key: "+key.Key, "Traceparent: "+parent)
	if a.status != http.StatusOK {
		t.Fatalf("good key: %d %s", a.status, a.body)
	}
	spans := spansOf(rec, traceID)
	server := oneSpan(t, spans, trace.SpanKindServer, gatewayScope)
	if server.Parent().SpanID() != parentID || !server.Parent().IsRemote() {
		t.Errorf("server span's parent %s, want the proxy's %s", server.Parent().SpanID(), parentID)
	}
	for k, want := range map[string]string{"authgate.decision": "allowed", "authgate.route": "reports-read",
		"authgate.auth.method": "api_key", "http.response.status_code": "200", "authgate.upstream": "api"} {
		if got := attr(server, k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	client := oneSpan(t, spans, trace.SpanKindClient, gatewayScope)
	if client.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("upstream span's parent %s, want the server span %s", client.Parent().SpanID(), server.SpanContext().SpanID())
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	gotTrace, gotParent := upstreamTrace(t, reqs[0].Header)
	if gotTrace != traceID || gotParent != client.SpanContext().SpanID() {
		t.Errorf("upstream traceparent %s/%s, want %s/%s (the client span)", gotTrace, gotParent, traceID, client.SpanContext().SpanID())
	}
	redisSpans := 0
	for _, s := range spans {
		if s.InstrumentationScope().Name == redisScope {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Error("the uncached key lookup made no Redis span in the request's trace")
	}

	// Untrusted peer: its traceparent starts nothing.
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	otherID, _ := trace.TraceIDFromHex("11111111111111111111111111111111")
	api.reset()
	if a := h.do("GET", "/api/v1/reports/", "203.0.113.9:5000", "X-API-Key: "+key.Key, "Traceparent: "+other); a.status != http.StatusOK {
		t.Fatalf("untrusted peer: %d %s", a.status, a.body)
	}
	if n := len(spansOf(rec, otherID)); n != 0 {
		t.Errorf("%d spans joined an untrusted client's trace", n)
	}
	reqs = api.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	fresh, _ := upstreamTrace(t, reqs[0].Header)
	if fresh == otherID {
		t.Error("the upstream got the untrusted client's trace id")
	}
	root := oneSpan(t, spansOf(rec, fresh), trace.SpanKindServer, gatewayScope)
	if root.Parent().IsValid() {
		t.Errorf("the untrusted request's span has parent %s, want a new root", root.Parent().SpanID())
	}

	// Refused: the decision and the error code; no upstream call.
	refusedTrace := "00-33333333333333333333333333333333-4444444444444444-01"
	refusedID, _ := trace.TraceIDFromHex("33333333333333333333333333333333")
	api.reset()
	r := h.do("GET", "/api/v1/reports/", "192.0.2.10:5000", "X-API-Key: "+bogus, "Traceparent: "+refusedTrace)
	assertRejected(t, r, http.StatusUnauthorized, "invalid_api_key")
	assertNoRequests(t, api)
	spans = spansOf(rec, refusedID)
	refused := oneSpan(t, spans, trace.SpanKindServer, gatewayScope)
	for k, want := range map[string]string{"authgate.decision": "refused", "authgate.reason": "invalid_api_key",
		"http.response.status_code": "401", "authgate.route": "reports-read"} {
		if got := attr(refused, k); got != want {
			t.Errorf("refused span %s = %q, want %q", k, got, want)
		}
	}
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient && s.InstrumentationScope().Name == gatewayScope {
			t.Error("a refused request has an upstream span")
		}
	}

	// No credential anywhere in any span.
	secrets := []string{admin, key.Key, bogus}
	for _, k := range []string{admin, key.Key, bogus} {
		secrets = append(secrets, k[strings.LastIndexByte(k, '_')+1:]) // the secret part alone
	}
	all := rec.Ended()
	if len(all) < 5 {
		t.Fatalf("only %d spans recorded", len(all))
	}
	for _, s := range all {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, kv.Value.Emit())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, txt := range texts {
			for _, sec := range secrets {
				if strings.Contains(txt, sec) {
					t.Errorf("span %q carries a credential in %q", s.Name(), txt)
				}
			}
		}
	}
}

// TestTracingOffCostsNothing: with tracing off the middleware and the transport are not
// there at all: what they wrap is returned as is.
func TestTracingOffCostsNothing(t *testing.T) {
	var off *tracing.Tracer
	h := http.NewServeMux()
	if got, ok := off.Middleware(h).(*http.ServeMux); !ok || got != h {
		t.Errorf("Middleware on a nil Tracer wrapped the handler")
	}
	rt := http.DefaultTransport
	if got := off.Transport(rt); got != rt {
		t.Errorf("Transport on a nil Tracer wrapped the transport")
	}
	tr, err := tracing.New(context.Background(), config.Default().Tracing, nil)
	if err != nil || tr != nil {
		t.Errorf("tracing.New with the default config = %v, %v; want nil, nil (off)", tr, err)
	}
}
