package gateway_test

// Regression test of issue 10, found fault 2: /readyz answered 200 before the bootstrap
// admin user was in the store, so the configured admin's first login got 401
// invalid_login for as long as its password hash took.

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

// gatedHasher is argon2id whose Hash waits, after announcing itself on entered, until the
// test sends on release: a bootstrap user's hash as slow as the test wants, without a clock.
type gatedHasher struct {
	entered chan struct{}
	release chan struct{}
}

func newGatedHasher() *gatedHasher {
	return &gatedHasher{entered: make(chan struct{}, 8), release: make(chan struct{}, 8)}
}

func (h *gatedHasher) Hash(pw string, p user.Params) (string, error) {
	h.entered <- struct{}{}
	<-h.release
	return user.HashPassword(pw, p)
}

func (h *gatedHasher) Verify(encoded, pw string) (bool, error) {
	return user.VerifyPassword(encoded, pw)
}

// waitEntered waits until a hash is held by h.
func (h *gatedHasher) waitEntered(tb *testing.T, what string) {
	tb.Helper()
	select {
	case <-h.entered:
	case <-time.After(waitBound):
		tb.Fatalf("timed out after %s waiting for %s to hash through Options.PasswordHasher", waitBound, what)
	}
}

// readyz is the ops listener's /readyz answer: status code and body.
func readyz(tb *testing.T, ops string) (int, string) {
	tb.Helper()
	a, err := httpGet(tb, ops+"/readyz")
	if err != nil {
		tb.Fatalf("GET /readyz: %v", err)
	}
	return a.status, string(a.body)
}

// wantStarting polls /readyz n times and wants 503 "starting" every time.
func wantStarting(tb *testing.T, ops string, n int) {
	tb.Helper()
	for range n {
		if code, body := readyz(tb, ops); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
			tb.Fatalf("/readyz before the bootstrap user exists: %d %s, want 503 starting", code, body)
		}
	}
}

// untilReady polls /readyz until it is 200; every answer before must be 503 "starting",
// and the admin's login must work the first time it is 200.
func untilReady(tb *testing.T, g *liveGW) {
	tb.Helper()
	waitFor(tb, "/readyz 200", func() bool {
		code, body := readyz(tb, g.ops)
		if code == http.StatusOK {
			return true
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
			tb.Fatalf("/readyz while starting: %d %s, want 503 starting", code, body)
		}
		return false
	})
	g.loginAs(adminEmail, adminPass, "")
	wantStatus(tb, "the bootstrap admin key", g.call("GET", keysAPI, g.adminKey, nil), http.StatusOK)
}

func TestFault02_ReadyOnlyAfterBootstrapUser(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		rs := redistest.Start(t)
		h := newGatedHasher()
		o := issuerOpts(t.TempDir(), nil)
		o.hasher = h
		g := serveLive(t, rs, o) // returns once the bootstrap key works
		// Registered after serveLive's, so run before it: Serve's end waits for the hash.
		t.Cleanup(func() { close(h.release) })

		h.waitEntered(t, "the bootstrap admin user")
		wantStarting(t, g.ops, 20)
		if _, err := user.NewStore(rs.Client(t), redisPrefix, time.Now).ByEmail(context.Background(), adminEmail); err == nil {
			t.Fatal("the bootstrap user is in the store while its hash is held")
		}
		// The window the fault left open: a login now is refused, and readyz says so.
		a := g.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass})
		assertRejected(t, a, http.StatusUnauthorized, "invalid_login")
		wantStarting(t, g.ops, 1)

		h.release <- struct{}{}
		untilReady(t, g)
		assertNoRequests(t, g.ups["api"], g.ups["live"], g.ups["test"])
	})

	// Redis down at start: never 200 degraded (nothing is cached yet, the admin could not
	// sign in), even with serve_cached; ready once Redis is back and bootstrap is done.
	t.Run("redis down at start", func(t *testing.T) {
		rs := redistest.Start(t)
		rs.Stop(t)
		o := issuerOpts(t.TempDir(), nil)
		o.noWait = true
		g := serveLive(t, rs, o)
		wantStarting(t, g.ops, 20)
		rs.Restart(t)
		untilReady(t, g)
	})

	// A data loss on an established replica: the user is restored while readyz stays 200,
	// as every replica shares the loss (see docs/reliability.md).
	t.Run("restore after data loss stays ready", func(t *testing.T) {
		rs := redistest.Start(t)
		h := newGatedHasher()
		o := issuerOpts(t.TempDir(), nil)
		o.hasher, o.recheck = h, 50*time.Millisecond
		g := serveLive(t, rs, o)
		t.Cleanup(func() { close(h.release) })
		h.waitEntered(t, "the bootstrap admin user")
		h.release <- struct{}{}
		untilReady(t, g)

		if err := rs.Client(t).FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		h.waitEntered(t, "the restored bootstrap admin user")
		if code, body := readyz(t, g.ops); code != http.StatusOK {
			t.Fatalf("/readyz while restoring the bootstrap user: %d %s, want 200", code, body)
		}
		h.release <- struct{}{}
		waitForUser(t, rs, adminEmail)
		g.loginAs(adminEmail, adminPass, "")
	})

	// The memory store bootstraps in New: ready, and the admin signs in, from the first
	// answer on.
	t.Run("memory", func(t *testing.T) {
		yaml := gatewayHeader + `issuer:
  enabled: true
  name: authgate-f2
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
auth_api: {prefix: /api/auth}
bootstrap:
  admin_email: "` + adminEmail + `"
  admin_password: "` + adminPass + `"
routes: []
`
		cfg, err := config.Parse("f2.yaml", []byte(yaml), func(string) string { return "" })
		if err != nil {
			t.Fatalf("config.Parse: %v", err)
		}
		s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			PasswordParams: &user.TestParams})
		if err != nil {
			t.Fatalf("gateway.New: %v", err)
		}
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		g := &liveGW{tb: t, s: s, base: "http://" + s.Addr().String(), ops: "http://" + s.OpsAddr().String(),
			client: &http.Client{Timeout: waitBound}}
		if code, body := readyz(t, g.ops); code != http.StatusOK {
			t.Fatalf("/readyz on the memory store: %d %s, want 200", code, body)
		}
		g.loginAs(adminEmail, adminPass, "")
	})
}
