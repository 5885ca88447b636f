package gateway_test

// Regression tests of the second outside review of issue 9's fixes.

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/user"
)

// TestReview14_LoginFloodKeepsUsedUpEmailLimit: the per-email login bucket is what bounds
// password guessing against one account from many addresses. A flood of logins with
// more new emails than rate_limits.max_buckets (each from a new address, each refused
// cheaply) must not evict that account's used-up bucket and hand the attacker a fresh
// allowance: eviction forgets the buckets with the most allowance left first.
func TestReview14_LoginFloodKeepsUsedUpEmailLimit(t *testing.T) {
	up := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
issuer:
  enabled: true
  name: authgate-review
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
bootstrap:
  admin_email: alice@example.com
  admin_password: "alice's password"
rate_limits:
  login: {requests: 3, per: 1h}
  max_buckets: 16
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
`
	cfg, err := config.Parse("review.yaml", []byte(yaml), env(ups, nil))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		PasswordParams: &user.TestParams})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	h := &harness{t: t, s: s, reg: prometheus.NewRegistry(), ups: ups}
	login := func(email, password, addr string) answer {
		t.Helper()
		r := httptest.NewRequest("POST", "/api/auth/login/", strings.NewReader(
			fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = addr
		return h.serve(r)
	}
	if a := login("alice@example.com", "alice's password", "10.0.0.100:4000"); a.status != http.StatusOK {
		t.Fatalf("alice's login: %d %s, want 200", a.status, a.body)
	}
	for i := range 2 { // with the successful login above, alice's three are used up
		if a := login("alice@example.com", "a guess", fmt.Sprintf("10.0.0.%d:4000", i+1)); a.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	assertRejected(t, login("alice@example.com", "a guess", "10.0.0.9:4000"), http.StatusTooManyRequests, "rate_limited")
	for i := range 100 { // each a new address and a new email: one request from each bucket
		if a := login(fmt.Sprintf("nobody%d@example.com", i), "wrong password", fmt.Sprintf("[2001:db8:%x::1]:4000", i)); a.status != http.StatusUnauthorized {
			t.Fatalf("flood login %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	// The right password from a new address: still refused, the allowance is not back.
	assertRejected(t, login("alice@example.com", "alice's password", "10.0.0.10:4000"), http.StatusTooManyRequests, "rate_limited")
	if n := up.count(); n != 0 {
		t.Fatalf("upstream saw %d requests, want 0", n)
	}
}
