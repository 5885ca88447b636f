// Package gateway wires the request pipeline, the proxy and the listeners together. It
// holds no auth, routing or proxy logic of its own: that lives in its sub-packages.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/pwhash"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqbody"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/tlscert"
	"github.com/authgate/authgate/gateway/tracing"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/gateway/webhook"
)

// Options are the process resources a Server is built with.
type Options struct {
	// Logger receives the access log and events. Required.
	Logger *slog.Logger
	// ConfigPath is re-read by Reload; "" means the configuration came from elsewhere
	// (the embedded default) and Reload has nothing to read.
	ConfigPath string
	// Getenv expands ${NAME} on reload. Default: none set.
	Getenv func(string) string
	// Registry receives the metrics. Default: a new registry with Go and process collectors.
	Registry *prometheus.Registry
	// PasswordParams are the argon2id costs of new password hashes. Default:
	// user.DefaultParams. Tests use user.TestParams.
	PasswordParams *user.Params
	// PasswordHasher hashes passwords on request paths and the bootstrap admin user's,
	// within password_hashing's bounds. Default: argon2id. Tests inject a slow one.
	PasswordHasher pwhash.Hasher
	// BootstrapRecheck is how often the bootstrap admin key and user are checked for and
	// restored when the store lost them. Default: 30s.
	BootstrapRecheck time.Duration
	// OwnTimeout bounds a call to the gateway's own API (login, management, console),
	// reading its body included. Default: 30s. Tests shorten it.
	OwnTimeout time.Duration
	// StoreProbeInterval is how often the store is pinged to learn whether it answers.
	// Default: store.redis.health_interval. Tests lengthen it.
	StoreProbeInterval time.Duration
	// HygieneInterval is how often authgate_api_keys is refreshed and expiring keys are
	// announced. Default: 1m. Tests shorten it.
	HygieneInterval time.Duration
	// Webhooks tunes the webhook notifier (queue, workers, retries); its Endpoints and
	// Deliveries are always the server's. Default: webhook's defaults. Tests shorten them.
	Webhooks webhook.Options
	// TracerProvider, when set, receives the spans instead of the OTLP exporter that
	// tracing.enabled configures, and turns tracing on. Tests record spans in memory.
	TracerProvider trace.TracerProvider
}

// Server is one gateway process: main and ops listeners, the current pipeline, the store.
type Server struct {
	opts      Options
	logger    *slog.Logger
	metrics   *metrics.Metrics
	transport *http.Transport
	// upstreamRT is transport, wrapped in a client span per call when tracing is on.
	upstreamRT http.RoundTripper
	// tracing is nil when tracing is off.
	tracing *tracing.Tracer
	store   store.Store
	breaker *store.Breaker // the store is known down while open
	keys    *keys
	tokens  *tokens
	limiter ratelimit.Limiter
	authn   authenticator
	// passwords bounds every password hash on a request path (password_hashing).
	passwords *pwhash.Pool

	cur atomic.Pointer[pipeline]
	// boot is the configuration the process started with: what its listeners, TLS
	// settings and store actually use, whatever reloads changed since.
	boot     *config.Config
	reloadMu sync.Mutex
	draining atomic.Bool
	// started is set once the start-up work against the store is done (see startUp):
	// until then /readyz is 503.
	started atomic.Bool
	// bootstrapNow asks keepBootstrap for a check at once (buffered, one pending).
	bootstrapNow chan struct{}
	// probeNow asks watchStore for a health probe at once (buffered, one pending).
	probeNow chan struct{}

	mainLn, opsLn net.Listener
	// certs is the main listener's certificate pair when TLS is on (set by Listen).
	certs *tlscert.Pair
}

// New builds a Server for cfg. It opens no listener (see Listen) and does not dial the
// store; a Redis store connects lazily and /readyz reports whether it answers.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		return nil, errors.New("gateway: Options.Logger is required")
	}
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	if opts.BootstrapRecheck <= 0 {
		opts.BootstrapRecheck = 30 * time.Second
	}
	if opts.OwnTimeout <= 0 {
		opts.OwnTimeout = defaultOwnTimeout
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		opts:      opts,
		logger:    opts.Logger,
		metrics:   metrics.New(opts.Registry),
		transport: proxy.NewTransport(),

		bootstrapNow: make(chan struct{}, 1),
		probeNow:     make(chan struct{}, 1),
	}
	ph := cfg.PasswordHashing
	s.passwords = pwhash.New(pwhash.Options{Hasher: opts.PasswordHasher, Concurrency: ph.Concurrency,
		Queue: ph.Queue, MaxWait: ph.MaxWait})
	s.breaker = s.newBreaker()
	tr, err := tracing.New(context.Background(), cfg.Tracing, opts.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.tracing, s.upstreamRT = tr, tr.Transport(s.transport)
	st, err := newStore(cfg, s.breaker)
	if err != nil {
		return nil, err
	}
	s.store = st
	if r, isRedis := st.(*store.Redis); isRedis {
		if err := s.tracing.InstrumentRedis(r.Client()); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	if s.keys, err = s.newKeys(cfg, st); err != nil {
		_ = st.Close()
		return nil, err
	}
	s.limiter = s.newLimiter(cfg, st)
	if s.tokens, err = s.newTokens(cfg, st); err != nil {
		_ = st.Close()
		return nil, err
	}
	s.authn = authenticator{keys: s.keys.authn, tokens: s.tokens.authn}
	if cfg.Store.Type == "memory" {
		// Nothing to dial: the bootstrap key is usable as soon as New returns. With Redis,
		// Serve registers it, retrying while the store is unreachable.
		s.keys.registerBootstrap(context.Background(), s.logger)
		s.registerBootstrapAdmin(context.Background(), cfg)
		s.started.Store(true)
	}
	p, err := newPipeline(s, cfg)
	if err != nil {
		s.tokens.close()
		_ = st.Close()
		return nil, err
	}
	s.cur.Store(p)
	s.boot = cfg
	return s, nil
}

func newStore(cfg *config.Config, b *store.Breaker) (store.Store, error) {
	if cfg.Store.Type == "memory" {
		return store.NewMemory(time.Now), nil
	}
	o := RedisOptions(cfg.Store.Redis)
	o.Breaker = b
	st, err := store.NewRedis(o)
	if err != nil {
		return nil, fmt.Errorf("gateway: store: %w", err)
	}
	return st, nil
}

// RedisOptions are the store options for r: addresses, credentials, and the timeouts and
// retries of store.redis.*, one dial per connection attempt. The CLI's direct mode uses
// them too, so a dead Redis costs it the same bounded wait.
func RedisOptions(r config.Redis) store.RedisOptions {
	return store.RedisOptions{
		Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, Password: r.Password.Value(),
		DB: r.DB, KeyPrefix: r.KeyPrefix, DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout,
		WriteTimeout: r.WriteTimeout, PoolTimeout: r.PoolTimeout, MaxRetries: retries(r.MaxRetries),
		MinRetryBackoff: r.MinRetryBackoff, MaxRetryBackoff: r.MaxRetryBackoff, DialRetries: 1,
		WaitReplicas: r.WaitReplicas.Replicas, WaitTimeout: r.WaitReplicas.Timeout,
	}
}

// ServeHTTP serves the main listener with the current pipeline.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cur.Load().handler.ServeHTTP(w, r)
}

// Config returns the configuration being served.
func (s *Server) Config() *config.Config { return s.cur.Load().cfg }

// Reload re-reads the configuration file and swaps it in. A file with problems is refused
// and logged, and the old configuration keeps serving; requests in flight are not touched
// either way. Changes to listeners, TLS settings or the store take effect only after a
// restart; the certificate files themselves are re-read by ReloadTLS.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.opts.ConfigPath == "" {
		return errors.New("gateway: no configuration file to reload")
	}
	cfg, err := LoadConfig(s.opts.ConfigPath, s.opts.Getenv)
	if err == nil {
		var p *pipeline
		if p, err = newPipeline(s, cfg); err == nil {
			s.cur.Swap(p).upstreams.retire(p.upstreams, s)
			s.metrics.ConfigReloads.WithLabelValues("success").Inc()
			s.logger.Info("config reloaded", slog.String("file", s.opts.ConfigPath), slog.Int("routes", len(cfg.Routes)))
			s.warnRestartOnly(s.boot, cfg)
			return nil
		}
	}
	s.metrics.ConfigReloads.WithLabelValues("failure").Inc()
	s.logger.Error("config reload refused; the previous configuration keeps serving",
		slog.String("file", s.opts.ConfigPath), slog.String("error", err.Error()))
	return err
}

// warnRestartOnly warns about each restart-only setting in cfg that differs from what the
// process runs (its start-up configuration): a reload that puts a value back says
// nothing, since nothing needs a restart then.
func (s *Server) warnRestartOnly(old, cfg *config.Config) {
	changed := func(name string, differ bool) {
		if differ {
			s.logger.Warn("config change needs a restart to take effect", slog.String("field", name))
		}
	}
	changed("listen", old.Listen != cfg.Listen)
	changed("ops_listen", old.OpsListen != cfg.OpsListen)
	changed("tls", old.TLS != cfg.TLS)
	oldSrv, newSrv := old.Server, cfg.Server
	oldSrv.BodyTimeout, newSrv.BodyTimeout = 0, 0 // server.body_timeout applies at once
	changed("server", oldSrv != newSrv)
	changed("store", !reflect.DeepEqual(old.Store, cfg.Store)) // not fmt.Sprint: it redacts the password
	changed("jwt", !reflect.DeepEqual(old.JWT, cfg.JWT))
	oi, ni := old.Issuer, cfg.Issuer
	oi.MFA, ni.MFA = "", "" // issuer.mfa applies at once
	changed("issuer", oi != ni)
	changed("rate_limits.mode", old.RateLimits.Mode != cfg.RateLimits.Mode)
	changed("console", old.Console != cfg.Console)
	changed("tracing", old.Tracing != cfg.Tracing)
	changed("auth_api", old.AuthAPI != cfg.AuthAPI)
	ok, nk := old.APIKeys, cfg.APIKeys
	changed("api_keys.prefix", ok.Prefix != nk.Prefix)
	changed("api_keys.hash_pepper", ok.HashPepper != nk.HashPepper)
	changed("api_keys.allowed_expiry_days", !slices.Equal(ok.AllowedExpiryDays, nk.AllowedExpiryDays) || ok.DefaultExpiryDays != nk.DefaultExpiryDays)
}

// ReloadTLS re-reads the main listener's certificate and key files and serves the new
// pair from the next handshake on. A pair that does not load is refused, logged and
// counted (authgate_tls_reloads_total{result="failure"}), and the previous one keeps
// serving. Without TLS it does nothing.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	certFile, keyFile := s.certs.Files()
	if err := s.certs.Reload(); err != nil {
		s.metrics.TLSReloads.WithLabelValues("failure").Inc()
		s.logger.Error("tls certificate reload refused; the previous certificate keeps serving",
			slog.String("cert_file", certFile), slog.String("key_file", keyFile), slog.String("error", err.Error()))
		return fmt.Errorf("gateway: tls: %w", err)
	}
	s.metrics.TLSReloads.WithLabelValues("success").Inc()
	s.metrics.TLSCertExpiry.Set(float64(s.certs.NotAfter().Unix()))
	s.logger.Info("tls certificate reloaded", slog.String("cert_file", certFile),
		slog.Time("not_after", s.certs.NotAfter()))
	return nil
}

// tlsSettle is how long certificate file events settle before the pair is re-read: the
// certificate and key are often written one after the other.
const tlsSettle = 200 * time.Millisecond

// watchTLS reloads the certificate pair whenever either file changes, until ctx is done.
// Both are watched through config.Watch, which follows renames onto the name, symlink
// targets (certbot's live/ links) and the Kubernetes Secret "..data" swap (cert-manager).
func (s *Server) watchTLS(ctx context.Context) {
	certFile, keyFile := s.certs.Files()
	for _, f := range []string{certFile, keyFile} {
		if err := config.Watch(ctx, f, tlsSettle, func() { _ = s.ReloadTLS() }); err != nil {
			s.logger.Warn("tls certificate watch unavailable; reload with SIGHUP", slog.String("file", f), slog.String("error", err.Error()))
		}
	}
}

// Listen opens the main and ops listeners on the configured addresses, and reads the
// TLS certificate pair when TLS is on.
func (s *Server) Listen() error {
	cfg := s.Config()
	var err error
	if cfg.TLS.Enabled() {
		if s.certs, err = tlscert.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return fmt.Errorf("gateway: tls: %w", err)
		}
		s.metrics.TLSCertExpiry.Set(float64(s.certs.NotAfter().Unix()))
	}
	if s.mainLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	if s.opsLn, err = net.Listen("tcp", cfg.OpsListen); err != nil {
		_ = s.mainLn.Close()
		return fmt.Errorf("gateway: ops_listen: %w", err)
	}
	return nil
}

// Addr is the main listener's address, after Listen.
func (s *Server) Addr() net.Addr { return s.mainLn.Addr() }

// OpsAddr is the ops listener's address, after Listen.
func (s *Server) OpsAddr() net.Addr { return s.opsLn.Addr() }

// Serve serves both listeners until ctx is done, then drains: /readyz turns 503, after
// server.drain_delay the listeners stop accepting, and in-flight requests get up to
// server.shutdown_timeout to finish. The store is closed last.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.Config()
	mainSrv := s.newHTTPServer(cfg, s)
	opsSrv := s.newHTTPServer(cfg, reqbody.Guard(cfg.Server.BodyTimeout, cfg.Server.ReadTimeout)(s.opsHandler()))
	if s.certs != nil {
		mainSrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
	}
	g, gctx := errgroup.WithContext(ctx)
	// The cache invalidations keep flowing until no request is served any more: a
	// draining replica still answers, so it must still apply (and confirm) revocations.
	invCtx, stopInv := context.WithCancel(context.WithoutCancel(gctx))
	defer stopInv()
	if s.certs != nil {
		s.watchTLS(gctx)
	}
	g.Go(func() error {
		var err error
		if s.certs != nil {
			err = mainSrv.ServeTLS(s.mainLn, "", "")
		} else {
			err = mainSrv.Serve(s.mainLn)
		}
		return ignoreClosed(err)
	})
	g.Go(func() error { return ignoreClosed(opsSrv.Serve(s.opsLn)) })
	g.Go(func() error {
		<-gctx.Done()
		s.draining.Store(true)
		s.logger.Info("draining", slog.Duration("drain_delay", cfg.Server.DrainDelay), slog.Duration("shutdown_timeout", cfg.Server.ShutdownTimeout))
		if cfg.Server.DrainDelay > 0 && ctx.Err() != nil {
			t := time.NewTimer(cfg.Server.DrainDelay)
			<-t.C
		}
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		err := mainSrv.Shutdown(sctx)
		err = errors.Join(err, opsSrv.Shutdown(sctx))
		s.transport.CloseIdleConnections()
		stopInv()
		return err
	})
	g.Go(func() error { return s.keys.inv.Run(invCtx) })                   // cache invalidations from every replica
	g.Go(func() error { s.keys.recorder.Run(gctx); return nil })           // key activity, flushed on the way out
	g.Go(func() error { s.keys.audit.Run(gctx, time.Second); return nil }) // audit records whose write failed
	g.Go(func() error { s.watchStore(gctx, s.probeInterval(cfg)); return nil })
	g.Go(func() error { return s.tokens.inv.Run(invCtx) }) // token cache invalidations (logout, user changes)
	g.Go(func() error { s.keepBootstrap(gctx, cfg, s.opts.BootstrapRecheck); return nil })
	g.Go(func() error { s.keys.notifier.Run(gctx); return nil })                 // webhook deliveries
	g.Go(func() error { s.watchHygiene(gctx, s.hygieneInterval()); return nil }) // authgate_api_keys, key.expiring
	err := g.Wait()
	s.tokens.close()
	err = errors.Join(err, s.store.Close()) // last: the loops above write to it until they stop
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer tcancel()
	if terr := s.tracing.Shutdown(tctx); terr != nil { // spans not exported yet; never fails the stop
		s.logger.Warn("tracing: spans not flushed", slog.String("error", terr.Error()))
	}
	s.logger.Info("stopped")
	return err
}

// retries is store.redis.max_retries as store.RedisOptions reads it: there 0 is the
// client's default and -1 none.
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// newHTTPServer sets the limits every listener needs against slow or greedy clients:
// headers (read_header_timeout, which also bounds the TLS handshake), the whole request
// (read_timeout), the answer (write_timeout) and idle keep-alives. A stalled body is cut
// off by reqbody.Guard (body_timeout) in the handler.
func (s *Server) newHTTPServer(cfg *config.Config, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// probeInterval is how often the store is pinged: Options.StoreProbeInterval, else
// store.redis.health_interval.
func (s *Server) probeInterval(cfg *config.Config) time.Duration {
	if s.opts.StoreProbeInterval > 0 {
		return s.opts.StoreProbeInterval
	}
	return cfg.Store.Redis.HealthInterval
}

// opsHandler serves /metrics, /healthz, /readyz and, with ops_pprof, /debug/pprof/; it is
// never on the main listener.
func (s *Server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	s.handlePprof(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			writeStatus(w, http.StatusServiceUnavailable, "draining")
			return
		}
		if !s.started.Load() {
			// Never degraded: a replica that has not reached its store yet has nothing
			// cached to serve, and its bootstrap admin could not sign in.
			writeStatus(w, http.StatusServiceUnavailable, "starting: bootstrap credentials not in place yet")
			return
		}
		if !s.pingStore(r.Context(), time.Second) {
			if s.servingFromCache() {
				writeStatus(w, http.StatusOK, "degraded: store unreachable, serving cached credentials")
				return
			}
			writeStatus(w, http.StatusServiceUnavailable, "store unreachable")
			return
		}
		writeStatus(w, http.StatusOK, "ready")
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// record counts the request and writes its access-log line. Labels are bounded: the route
// name from config, never the path.
func (s *Server) record(r *http.Request, info *reqinfo.Info, start time.Time, d time.Duration) {
	route := info.Route
	if route == "" {
		route = "none"
	}
	authLabel := info.Auth
	if authLabel == "" {
		authLabel = "none"
	}
	// A forward-auth check is shown as the request it decided; the check's own path is
	// kept apart in the log (authz_path).
	method, rawPath, authzPath := r.Method, r.URL.Path, ""
	if info.Decided.Method != "" {
		method, rawPath, authzPath = info.Decided.Method, info.Decided.Path, r.URL.Path
	}
	s.metrics.Requests.WithLabelValues(route, metrics.MethodLabel(method), metrics.CodeLabel(info.Status), authLabel).Inc()
	s.metrics.RequestDuration.WithLabelValues(route).Observe(d.Seconds())
	if info.Reason != "" {
		s.metrics.Rejected.WithLabelValues(info.Reason, route, authLabel).Inc()
	}
	accessLog := s.Config().Log.AccessLog
	if info.KeyID == "" && !accessLog {
		return
	}
	clientIP, path := info.ClientIP.String(), truncate(rawPath, 256) // formatted once for both
	if info.KeyID != "" {
		s.keys.recorder.Record(activity.Event{KeyID: info.KeyID, Time: start, Method: method,
			Path: path, Route: info.Route, Status: info.Status, ClientIP: clientIP})
	}
	if !accessLog {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.ID),
		slog.String("route", info.Route),
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", info.Status),
		slog.String("auth", info.Auth),
		slog.String("client_ip", clientIP),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if authzPath != "" {
		attrs = append(attrs, slog.String("authz_path", truncate(authzPath, 256)))
	}
	if info.KeyID != "" {
		attrs = append(attrs, slog.String("key_id", info.KeyID))
	}
	if info.Subject != "" {
		attrs = append(attrs, slog.String("subject", info.Subject))
	}
	if info.Reason != "" {
		attrs = append(attrs, slog.String("reason", info.Reason))
	}
	s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
