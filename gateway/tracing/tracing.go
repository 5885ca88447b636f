// Package tracing is the gateway's OpenTelemetry tracing: a provider exporting over
// OTLP/HTTP, the middleware that makes one server span per request, the transport that
// makes a client span per upstream call and passes the trace on, and the instrumentation
// of Redis round trips.
//
// A nil *Tracer is tracing turned off: its Middleware and Transport return what they are
// given, so the request path pays nothing for it.
//
// Span attributes are chosen here, never by a library: the route name, the auth method,
// the decision and its error code, the status, the upstream's name and address. Never a
// credential, a header value, a path or a query string (either may carry secrets), a key
// id or a subject.
package tracing

import (
	"context"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// instrumentation names the gateway's tracer.
const instrumentation = "github.com/authgate/authgate/gateway"

// Attribute keys of the gateway's spans.
const (
	AttrRoute      = attribute.Key("authgate.route")       // route name, "none" when none matched
	AttrAuthMethod = attribute.Key("authgate.auth.method") // jwt, api_key or none
	AttrDecision   = attribute.Key("authgate.decision")    // allowed or refused
	AttrReason     = attribute.Key("authgate.reason")      // the error code of a refusal
	AttrUpstream   = attribute.Key("authgate.upstream")    // upstream name
	AttrRequestID  = attribute.Key("authgate.request_id")  // X-Request-Id
	attrMethod     = attribute.Key("http.request.method")
	attrStatus     = attribute.Key("http.response.status_code")
	attrServerAddr = attribute.Key("server.address")
)

// Tracer holds the provider and what the gateway's spans are made with.
type Tracer struct {
	tp       trace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error
}

// New returns the Tracer for cfg, or nil when tracing is off. tp, when not nil, is used
// instead of an OTLP exporter (tests record spans in memory); otherwise spans are batched
// to cfg.Endpoint over OTLP/HTTP, new traces sampled at cfg.SampleRatio and continued ones
// as their parent was. Nothing is dialled until the first batch.
func New(ctx context.Context, cfg config.Tracing, tp trace.TracerProvider) (*Tracer, error) {
	if !cfg.Enabled && tp == nil {
		return nil, nil
	}
	t := &Tracer{prop: propagation.TraceContext{}, shutdown: func(context.Context) error { return nil }}
	if tp == nil {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("tracing: exporter: %w", err)
		}
		res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName)))
		if err != nil {
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
		sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))))
		tp, t.shutdown = sdk, sdk.Shutdown
	}
	t.tp, t.tracer = tp, tp.Tracer(instrumentation)
	return t, nil
}

// Shutdown flushes the spans not yet exported. It is safe on a nil Tracer.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Middleware makes the server span of each request on the main listener. It runs inside
// the middleware that resolves the client (reqinfo): a W3C traceparent is continued only
// from a trusted proxy (client_ip.trusted_proxies); from anyone else the request starts a
// new trace, and its traceparent and tracestate are dropped so the upstream sees the
// gateway's. After the inner handlers ran, the span gets the route, the auth method, the
// decision, the refusal's error code and the status. On a nil Tracer it returns next.
func (t *Tracer) Middleware(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		info := reqinfo.From(ctx)
		if info != nil && info.PeerTrusted {
			ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		r.Header.Del("Traceparent")
		r.Header.Del("Tracestate")
		ctx, span := t.tracer.Start(ctx, "authgate "+methodName(r.Method), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attrMethod.String(methodName(r.Method))))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
		if info == nil {
			return
		}
		route, auth, decision := or(info.Route, "none"), or(info.Auth, "none"), "allowed"
		if info.Reason != "" {
			decision = "refused"
		}
		span.SetName("authgate " + route)
		span.SetAttributes(AttrRoute.String(route), AttrAuthMethod.String(auth), AttrDecision.String(decision),
			attrStatus.Int(info.Status), AttrRequestID.String(info.ID))
		if info.Reason != "" {
			span.SetAttributes(AttrReason.String(info.Reason))
		}
		if info.Upstream != "" {
			span.SetAttributes(AttrUpstream.String(info.Upstream))
		}
		if info.Status >= 500 {
			span.SetStatus(codes.Error, or(info.Reason, http.StatusText(info.Status)))
		}
	})
}

// Transport wraps next so that each upstream call is a client span, child of the
// request's, and carries its traceparent to the upstream. The span ends when the
// upstream's response headers arrive. On a nil Tracer it returns next.
func (t *Tracer) Transport(next http.RoundTripper) http.RoundTripper {
	if t == nil {
		return next
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    *Tracer
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	attrs := []attribute.KeyValue{attrMethod.String(methodName(req.Method)), attrServerAddr.String(req.URL.Host)}
	name := "upstream"
	if info := reqinfo.From(req.Context()); info != nil && info.Upstream != "" {
		attrs = append(attrs, AttrUpstream.String(info.Upstream))
		name = "upstream " + info.Upstream
	}
	ctx, span := tr.t.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	out := req.Clone(ctx) // a RoundTripper must not change the request it was given
	tr.t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := tr.next.RoundTrip(out)
	if err != nil {
		// The error's text may name the URL, query string included: not recorded.
		span.SetStatus(codes.Error, "upstream exchange failed")
		return nil, err
	}
	span.SetAttributes(attrStatus.Int(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// InstrumentRedis makes each command and pipeline of rdb a span, without the command's
// arguments (they hold key hashes and user records), and only inside a traced request:
// health pings and background work start no traces of their own. It does nothing on a nil
// Tracer.
func (t *Tracer) InstrumentRedis(rdb redis.UniversalClient) error {
	if t == nil {
		return nil
	}
	err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(childOnlyProvider{tp: t.tp}),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
	if err != nil {
		return fmt.Errorf("tracing: redis: %w", err)
	}
	return nil
}

// childOnlyProvider gives tracers that start a span only under an existing one.
type childOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

// Tracer implements trace.TracerProvider.
func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start implements trace.Tracer: without a span in ctx it returns ctx's own (no-op) span.
func (c childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, parent
	}
	return c.t.Start(ctx, name, opts...)
}

// methodName bounds the method to the standard ones, as the metrics do.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
