package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/demoupstream"
	"github.com/authgate/authgate/gateway/randid"
)

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: $AUTHGATE_CONFIG, else the embedded demo gateway.yaml)")
	demo := fs.String("demo-upstream", "", "also run the demo upstream on this address, e.g. 127.0.0.1:9000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		*path = getenv("AUTHGATE_CONFIG")
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log.Level, stdout)
	if *path == "" {
		logger.Warn("running the embedded demo configuration (memory store, nothing persists): pass --config FILE or set AUTHGATE_CONFIG for a real deployment")
	}
	demoKey := ""
	// One-run credentials only in a store that ends with the process: written to Redis, a
	// "this run only" admin key or user would outlive the run, on every replica.
	oneRun := *demo != "" && cfg.Store.Type == "memory"
	if oneRun && cfg.Bootstrap.AdminKey == "" {
		// `make run`: an admin key to try the gateway with, printed below. The memory store
		// ends with this process, and the key with it.
		if demoKey, err = apikey.Generate(cfg.APIKeys.Prefix, apikey.Live); err != nil {
			return err
		}
		cfg.Bootstrap.AdminKey = config.Secret(demoKey)
	}
	demoEmail, demoPassword := "", ""
	if oneRun && *path == "" && !cfg.Issuer.Enabled && cfg.Bootstrap.AdminEmail == "" {
		// `make run` (the embedded config): the built-in issuer too, with a signing key and an admin user that
		// live as long as this process, so login and JWTs can be tried at once.
		dir, err := os.MkdirTemp("", "authgate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		demoEmail, demoPassword = "admin@example.com", randid.New("", 16)
		cfg.Issuer.Enabled = true
		cfg.Issuer.SigningKeyFile = filepath.Join(dir, "signing-key.pem")
		cfg.Bootstrap.AdminEmail, cfg.Bootstrap.AdminPassword = demoEmail, config.Secret(demoPassword)
		cfg.Console.Enabled = true // the web console, to sign in with that user
	}
	// go-redis logs reconnect attempts through a process-wide logger; route it to ours so
	// every line is JSON. This is the one global the binary sets, and only here in main's run.
	redis.SetLogger(redisLogger{logger})
	if *demo != "" {
		stopDemo, err := startDemo(*demo, logger)
		if err != nil {
			return err
		}
		defer stopDemo()
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: logger, ConfigPath: *path, Getenv: getenv})
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		return err
	}
	if *path != "" {
		if err := config.Watch(ctx, *path, 200*time.Millisecond, func() { _ = s.Reload() }); err != nil {
			logger.Warn("config file watch unavailable; reload with SIGHUP", slog.String("error", err.Error()))
		}
	}
	// A SIGHUP received while starting waits in hup (main subscribed it first) and
	// reloads once here.
	hup := hangupFrom(ctx)
	if hup == nil { // serve run in-process (tests): subscribe now
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		hup = ch
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = s.Reload()
				_ = s.ReloadTLS() // the certificate files, even when the config file is unchanged
			}
		}
	}()
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	logger.Info("authgate serving", slog.String("version", version()),
		slog.String("listen", s.Addr().String()), slog.String("scheme", scheme),
		slog.String("ops_listen", s.OpsAddr().String()), slog.String("store", cfg.Store.Type),
		slog.Int("routes", len(cfg.Routes)))
	if *demo != "" {
		_, port, _ := net.SplitHostPort(s.Addr().String())
		base := scheme + "://localhost:" + port
		var banner bytes.Buffer
		fmt.Fprintf(&banner, "\nauthgate is ready (demo upstream on %s). Try:\n\n", *demo)
		fmt.Fprintf(&banner, "  curl -i %s/health\n", base)
		fmt.Fprintf(&banner, "  curl -i %s/api/v1/reports/    # 401: this route needs a credential\n", base)
		if demoKey != "" {
			fmt.Fprintf(&banner, "\nadmin key (this run only): %s\n\n", demoKey)
			fmt.Fprintf(&banner, "  curl -i -H 'X-API-Key: %s' %s/api/v1/reports/\n", demoKey, base)
			fmt.Fprintf(&banner, "  curl -s -H 'X-API-Key: %s' -d '{\"name\":\"first\",\"scopes\":[\"reports:read\"]}' %s%s/api-keys/\n",
				demoKey, base, cfg.AuthAPI.Prefix)
		}
		if !oneRun && cfg.Bootstrap.AdminKey == "" {
			fmt.Fprintf(&banner, "\nno admin key for this run: store.type is %s, which outlives the process.\n", cfg.Store.Type)
			fmt.Fprintf(&banner, "Set bootstrap.admin_key, or create a key with `authgate keys create --config FILE --type admin ...`.\n")
		}
		if demoEmail != "" {
			fmt.Fprintf(&banner, "\nadmin user (this run only): %s, password %s\n\n", demoEmail, demoPassword)
			fmt.Fprintf(&banner, "  curl -s -d '{\"email\":\"%s\",\"password\":\"%s\"}' %s%s/login/\n", demoEmail, demoPassword, base, cfg.AuthAPI.Prefix)
			fmt.Fprintf(&banner, "  ACCESS=$(curl -s -d '{\"email\":\"%s\",\"password\":\"%s\"}' %s%s/login/ | sed -n 's/.*\"access\":\"\\([^\"]*\\)\".*/\\1/p')\n",
				demoEmail, demoPassword, base, cfg.AuthAPI.Prefix)
			fmt.Fprintf(&banner, "  curl -i -H \"Authorization: Bearer $ACCESS\" %s/api/v1/reports/\n", base)
			fmt.Fprintf(&banner, "\nweb console: %s%s (sign in with the admin user)\n", base, cfg.Console.Path)
		}
		fmt.Fprintln(&banner)
		// One write, so a reader never sees half of the instructions.
		_, _ = stderr.Write(banner.Bytes())
	}
	return s.Serve(ctx)
}

// redisLogger adapts slog to go-redis's Printf logger.
type redisLogger struct{ l *slog.Logger }

func (rl redisLogger) Printf(ctx context.Context, format string, v ...any) {
	rl.l.WarnContext(ctx, "redis client", slog.String("detail", fmt.Sprintf(format, v...)))
}

// loadConfig reads path, or the embedded default when path is "", with every check serve
// makes before it listens (gateway.ConfigOptions): serve and config validate both load
// through it.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	return loadConfigWith(path, gateway.ConfigOptions(getenv))
}

// loadConfigWith is loadConfig with other options.
func loadConfigWith(path string, o config.Options) (*config.Config, error) {
	if path == "" {
		return config.ParseWith("gateway.yaml (embedded)", authgate.DefaultConfig, o)
	}
	return config.LoadWith(path, o)
}

// newLogger logs JSON at level to w. Durations are written as Go duration strings
// ("30s", "1.5ms") rather than slog's integer nanoseconds.
func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: durationText}))
}

// durationText is a slog ReplaceAttr that writes durations as strings.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// startDemo runs the demo upstream for `make run`.
func startDemo(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := &http.Server{Handler: demoupstream.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo upstream stopped", slog.String("error", err.Error()))
		}
	}()
	logger.Info("demo upstream serving", slog.String("listen", ln.Addr().String()))
	return func() { _ = srv.Close() }, nil
}

func validateCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: $AUTHGATE_CONFIG, else gateway.yaml), the one serve would read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		*path = cmp.Or(getenv("AUTHGATE_CONFIG"), "gateway.yaml")
	}
	if _, err := loadConfig(*path, getenv); err != nil { // what serve loads with
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(stderr, ps.Error())
			return fmt.Errorf("%s: %d problem(s)", *path, len(ps))
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}
