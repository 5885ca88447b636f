//go:build cluster

package gateway_test

// Three gateway replicas (in-process, each with its own store client, listeners,
// invalidation subscription and activity recorder) on a real Redis Cluster (3 primaries,
// 3 replicas) and on a real Sentinel set (primary, replica, 3 sentinels): everything that
// touches Redis works, revocations reach every replica quickly, and the shared rate limit
// stays exact. Run with `make test-cluster`.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

// topology is a Redis deployment the gateways are pointed at.
type topology struct {
	name string
	// redisYAML replaces liveConfig's single-address line.
	redisYAML string
	// rc is a client of the topology for raw assertions.
	rc redis.UniversalClient
}

func clusterTopology(t *testing.T) (*topology, *redistest.Cluster) {
	c := redistest.StartCluster(t, 3, 1)
	return &topology{name: "cluster", redisYAML: `addrs: ["` + strings.Join(c.Addrs(), `", "`) + `"]`, rc: c.Client(t)}, c
}

func sentinelTopology(t *testing.T) (*topology, *redistest.Sentinel) {
	s := redistest.StartSentinel(t)
	return &topology{name: "sentinel", redisYAML: `addrs: ["` + strings.Join(s.Addrs(), `", "`) + `"], master_name: "` +
		redistest.SentinelMaster + `"`, rc: s.Client(t)}, s
}

// serveTopo is serveLive for a topology: the same configuration, with the topology's
// addresses.
func serveTopo(tb testing.TB, tp *topology, o liveOpts) *liveGW {
	tb.Helper()
	if o.onStoreError == "" {
		o.onStoreError = "serve_cached"
	}
	if o.cacheTTL == "" {
		o.cacheTTL = "30s"
	}
	if o.adminKey == "" {
		o.adminKey = newAdminKey(tb)
	}
	ups := map[string]*upstream{"api": startTBUpstream(tb, "api"), "live": startTBUpstream(tb, "live"), "test": startTBUpstream(tb, "test")}
	vars := map[string]string{"CACHE_TTL": o.cacheTTL, "ON_STORE_ERROR": o.onStoreError, "ADMIN_KEY": o.adminKey}
	maps.Copy(vars, o.env)
	getenv := env(ups, vars)
	text := strings.Replace(liveConfig, `addrs: ["${REDIS_ADDR}"]`, tp.redisYAML, 1)
	if text == liveConfig {
		tb.Fatal("liveConfig no longer has the addrs line serveTopo replaces")
	}
	cfg, err := config.Parse("test.yaml", []byte(text+o.extra), getenv)
	if err != nil {
		tb.Fatalf("config.Parse: %v", err)
	}
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: reg, Getenv: getenv,
		PasswordParams: &user.TestParams, StoreProbeInterval: o.probeInterval})
	if err != nil {
		tb.Fatalf("gateway.New: %v", err)
	}
	if err := s.Listen(); err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	g := &liveGW{tb: tb, s: s, reg: reg, logs: logs, base: "http://" + s.Addr().String(), ops: "http://" + s.OpsAddr().String(),
		client: &http.Client{Transport: tr, Timeout: waitBound}, adminKey: o.adminKey, ups: ups}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Serve: %v", err)
			}
		case <-time.After(waitBound):
			tb.Errorf("Serve did not return within %s", waitBound)
		}
		tr.CloseIdleConnections()
	})
	waitWithin(tb, 10*time.Second, "the bootstrap admin key to work", func() bool {
		return g.call("GET", keysAPI, o.adminKey, nil).status == http.StatusOK
	})
	waitFor(tb, "the invalidation subscriptions", func() bool {
		return strings.Count(logs.String(), `"reason":"subscribed"`) >= 2
	})
	return g
}

// threeReplicas serves three gateways on tp with the issuer on, one signing key, one admin
// key and extra environment.
func threeReplicas(t *testing.T, tp *topology, extraEnv map[string]string) []*liveGW {
	t.Helper()
	return threeReplicasOn(t, tp, extraEnv, "")
}

// threeReplicasOn is threeReplicas with store.on_store_error set ("" for the test default,
// serve_cached).
func threeReplicasOn(t *testing.T, tp *topology, extraEnv map[string]string, onStoreError string) []*liveGW {
	t.Helper()
	o := issuerOpts(t.TempDir(), extraEnv)
	o.onStoreError = onStoreError
	o.adminKey = newAdminKey(t)
	var gs []*liveGW
	for range 3 {
		gs = append(gs, serveTopo(t, tp, o))
	}
	st := user.NewStore(tp.rc, redisPrefix, time.Now)
	waitFor(t, "the bootstrap user", func() bool {
		_, err := st.ByEmail(context.Background(), adminEmail)
		return err == nil
	})
	return gs
}

// steadyLoad sends requests with key round-robin to gs until stop is called, which
// returns how many were sent and how many were not 200.
func steadyLoad(gs []*liveGW, key string) (stop func() (sent, bad int64, firstBad string)) {
	var sent, bad atomic.Int64
	var first atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				g := gs[i%len(gs)]
				req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/api/v1/reports/", nil)
				req.Header.Set("X-API-Key", key)
				resp, err := g.client.Do(req)
				if ctx.Err() != nil {
					return
				}
				sent.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					bad.Add(1)
					if err == nil {
						first.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
					} else {
						first.CompareAndSwap(nil, err.Error())
					}
				}
				if resp != nil {
					resp.Body.Close()
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() (int64, int64, string) {
		cancel()
		wg.Wait()
		f, _ := first.Load().(string)
		return sent.Load(), bad.Load(), f
	}
}

// percentile returns the p-th percentile of d (sorted in place).
func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func TestClusterReplicasEverything(t *testing.T) {
	tp, _ := clusterTopology(t)
	everythingOnTopology(t, tp)
}

func TestSentinelReplicasEverything(t *testing.T) {
	tp, _ := sentinelTopology(t)
	everythingOnTopology(t, tp)
}

// everythingOnTopology drives every Redis-backed feature through three replicas on tp,
// under steady load from another key.
func everythingOnTopology(t *testing.T, tp *topology) {
	gs := threeReplicas(t, tp, map[string]string{"RL_MODE": "redis"})
	a, b, c := gs[0], gs[1], gs[2]

	// Steady load throughout, with a key made on A.
	load := a.createKey(a.adminKey, map[string]any{"name": "load", "scopes": []string{"reports:read"}})
	stop := steadyLoad(gs, load.Secret)
	defer func() {
		sent, bad, first := stop()
		t.Logf("%s: steady load: %d requests, %d not 200 (first: %s)", tp.name, sent, bad, first)
		if bad != 0 || sent == 0 {
			t.Errorf("steady load: %d of %d requests failed (first: %s)", bad, sent, first)
		}
	}()

	// A key created on A works on B and C; edited on B, it narrows on A and C.
	k := a.createKey(a.adminKey, map[string]any{"name": "shared", "scopes": []string{"reports:read", "dashboards:read"}})
	for _, g := range gs {
		wantStatus(t, "new key", g.report(k.Secret), http.StatusOK)
	}
	list := b.call("GET", keysAPI+"?q=shared", b.adminKey, nil)
	wantStatus(t, "list on B", list, http.StatusOK)
	if !strings.Contains(string(list.body), k.ID) {
		t.Errorf("list on B lacks %s: %s", k.ID, list.body)
	}
	wantStatus(t, "patch on B", b.call("PATCH", keysAPI+k.ID+"/", b.adminKey, map[string]any{"scopes": []string{"dashboards:read"}}), http.StatusOK)
	for _, g := range []*liveGW{a, c} {
		rej, _ := refusedWithin(t, g, k.Secret, revocationBound)
		assertRejected(t, rej, http.StatusForbidden, "insufficient_scope")
	}

	// Revocation: each of 100 keys, cached on all three, revoked on A. The revocation is
	// answered only once B and C have confirmed it (credcache.Invalidator.Publish), so the
	// first request to each after the answer is refused: the time a revocation takes to
	// be refused by all three is the revocation call's own time, measured here.
	const revocations = 100
	var lat []time.Duration
	for i := range revocations {
		rk := a.createKey(a.adminKey, map[string]any{"name": fmt.Sprintf("rev-%d", i), "scopes": []string{"reports:read"}})
		for _, g := range gs {
			wantStatus(t, "cache the key", g.report(rk.Secret), http.StatusOK)
		}
		start := time.Now()
		wantStatus(t, "revoke on A", a.call("DELETE", keysAPI+rk.ID+"/", a.adminKey, nil), http.StatusOK)
		lat = append(lat, time.Since(start))
		for _, g := range gs { // (the steady load uses the same upstream: the 401 is the proof)
			assertRejected(t, g.report(rk.Secret), http.StatusUnauthorized, "revoked_api_key")
		}
	}
	slices.Sort(lat)
	p50, p99, worst := percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1]
	t.Logf("%s: revocation refused by all three replicas once answered, in: p50 %s, p99 %s, max %s over %d revocations", tp.name, p50, p99, worst, len(lat))
	fmt.Printf("%s revocation visibility: p50=%s p99=%s max=%s n=%d\n", tp.name, p50, p99, worst, len(lat))
	// The target is 100 ms at p99. Timing is reported, not asserted, below the documented
	// bound (1 s): a saturated shared CI machine stretches single requests to several
	// hundred ms; a miss of the target is reported loudly.
	if p99 > 100*time.Millisecond {
		t.Logf("WARNING: %s: revocation p99 %s is above the 100ms target (machine load?)", tp.name, p99)
		fmt.Printf("WARNING: %s revocation p99 %s above the 100ms target\n", tp.name, p99)
	}
	if p99 > revocationBound {
		t.Errorf("%s: revocation p99 %s, want <= %s", tp.name, p99, revocationBound)
	}

	// A shared limit of 1000 per hour on one key, 1100 requests spread over the three
	// replicas at once: 1000 to 1020 get through.
	lk := a.createKey(a.adminKey, map[string]any{"name": "limited", "scopes": []string{"reports:read"},
		"rate_limit": map[string]any{"requests": 1000, "per": "1h"}})
	var ok, limited, other atomic.Int64
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1100; i += 12 {
				switch gs[i%3].report(lk.Secret).status {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%s: shared limit 1000/h: %d allowed, %d limited, %d other", tp.name, ok.Load(), limited.Load(), other.Load())
	if ok.Load() < 1000 || ok.Load() > 1020 || other.Load() != 0 {
		t.Errorf("%s: shared limit: %d allowed (want 1000..1020), %d other", tp.name, ok.Load(), other.Load())
	}

	// Users: created on A, listed on B, demoted on C; login on B, refresh on C, logout on
	// A; the refresh family dies everywhere.
	alice := a.createUser("alice@example.com", "alice's password", "member")
	wantStatus(t, "users on B", b.call("GET", usersAPI, b.adminKey, nil), http.StatusOK)
	la := b.loginAs("alice@example.com", "alice's password", "")
	for _, g := range gs {
		wantStatus(t, "alice's token", g.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)), http.StatusOK)
	}
	r1 := c.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh})
	wantStatus(t, "refresh on C", r1, http.StatusOK)
	p1 := decodeJSON[login.RefreshAnswer](t, r1)
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh}), http.StatusUnauthorized, "invalid_token")
	assertRejected(t, b.call("POST", refreshAPI, "", map[string]string{"refresh": p1.Refresh}), http.StatusUnauthorized, "invalid_token")

	l2 := b.loginAs("alice@example.com", "alice's password", "")
	for _, g := range gs {
		wantStatus(t, "cache the token", g.call("GET", "/api/v1/reports/", "", nil, bearer(l2.Access)), http.StatusOK)
	}
	wantStatus(t, "logout on A", a.call("POST", logoutAPI, "", map[string]string{"refresh": l2.Refresh}, bearer(l2.Access)), http.StatusNoContent)
	for _, g := range gs {
		rej, _ := refusedWithinBearer(t, g, l2.Access, revocationBound)
		assertRejected(t, rej, http.StatusUnauthorized, "revoked_token")
	}
	assertRejected(t, c.call("POST", refreshAPI, "", map[string]string{"refresh": l2.Refresh}), http.StatusUnauthorized, "invalid_token")

	// Demoted (to guest, without reports:read) on C: A and B narrow.
	l3 := a.loginAs("alice@example.com", "alice's password", "")
	for _, g := range gs {
		wantStatus(t, "cache the token", g.call("GET", "/api/v1/reports/", "", nil, bearer(l3.Access)), http.StatusOK)
	}
	wantStatus(t, "demote on C", c.call("PATCH", usersAPI+alice.ID+"/", c.adminKey, map[string]any{"role": "guest"}), http.StatusOK)
	for _, g := range gs {
		rej, _ := refusedWithinBearer(t, g, l3.Access, revocationBound)
		if rej.status != http.StatusForbidden && rej.status != http.StatusUnauthorized {
			t.Errorf("demoted token: %d %s", rej.status, rej.body)
		}
	}

	// TOTP: enrolled on A, verified on B; a code used on C is refused on A (replay guard).
	adm := a.loginAs(adminEmail, adminPass, "")
	en := a.call("POST", "/api/auth/mfa/totp/enroll/", "", login.EnrollRequest{CurrentPassword: adminPass}, bearer(adm.Access))
	wantStatus(t, "enroll", en, http.StatusOK)
	ea := decodeJSON[login.EnrollAnswer](t, en)
	code, err := totp.GenerateCode(ea.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "verify", b.call("POST", "/api/auth/mfa/totp/verify/", "", map[string]string{"code": code}, bearer(adm.Access)), http.StatusOK)
	next, err := totp.GenerateCode(ea.Secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "login with the next code on C", c.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": next}), http.StatusOK)
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": next}), http.StatusUnauthorized, "mfa_required")

	// Login limits are shared: 10 per minute per client IP (and per email) over the three
	// replicas, not 10 on each. This client has logged in above, so fewer are left.
	var attempts int
	for i := range 30 {
		ans := gs[i%3].call("POST", loginAPI, "", map[string]string{"email": "bob@example.com", "password": "wrong password!"})
		if ans.status == http.StatusTooManyRequests {
			break
		}
		assertRejected(t, ans, http.StatusUnauthorized, "invalid_login")
		attempts++
	}
	if attempts >= 10 {
		t.Errorf("%d failed logins before the first 429 over three replicas, want < 10 (the limit is shared)", attempts)
	}
	assertRejected(t, b.call("POST", loginAPI, "", map[string]string{"email": "bob@example.com", "password": "wrong password!"}), http.StatusTooManyRequests, "rate_limited")

	// Activity and audit: the load key's uses, recorded by all three, are visible on any.
	waitFor(t, "activity of the load key", func() bool {
		ans := c.call("GET", keysAPI+load.ID+"/activity/", c.adminKey, nil)
		return ans.status == http.StatusOK && strings.Contains(string(ans.body), "/api/v1/reports/")
	})
	n, err := tp.rc.XLen(context.Background(), redisPrefix+"audit").Result()
	if err != nil || n == 0 {
		t.Errorf("audit stream: %d entries, %v", n, err)
	}
}

// refusedWithinBearer is refusedWithin for an access token.
func refusedWithinBearer(tb testing.TB, g *liveGW, token string, bound time.Duration) (answer, time.Duration) {
	tb.Helper()
	start := time.Now()
	for {
		a := g.call("GET", "/api/v1/reports/", "", nil, bearer(token))
		if a.status != http.StatusOK {
			return a, time.Since(start)
		}
		if time.Since(start) > bound {
			tb.Fatalf("token still accepted after %s", bound)
		}
	}
}

// TestClusterPublishReachesEveryNode: a PUBLISH through the store's cluster client is
// delivered to subscribers on every node, primaries and replicas: classic pub/sub is
// broadcast over the cluster bus, so a gateway sees every invalidation whichever node
// its subscription landed on.
func TestClusterPublishReachesEveryNode(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	cc := c.Client(t)
	var subs []*redis.PubSub
	for _, n := range c.Nodes {
		rc := n.Client(t)
		ps := rc.Subscribe(t.Context(), redisPrefix+"invalidate")
		if _, err := ps.Receive(t.Context()); err != nil {
			t.Fatalf("subscribe on %s: %v", n.Addr(), err)
		}
		t.Cleanup(func() { _ = ps.Close() })
		subs = append(subs, ps)
	}
	for i := range 20 {
		msg := fmt.Sprintf("revoke-%d", i)
		if err := cc.Publish(t.Context(), redisPrefix+"invalidate", msg).Err(); err != nil {
			t.Fatalf("publish: %v", err)
		}
		for j, ps := range subs {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			m, err := ps.ReceiveMessage(ctx)
			cancel()
			if err != nil || m.Payload != msg {
				t.Fatalf("node %s: got %v, %v; want %q", c.Nodes[j].Addr(), m, err, msg)
			}
		}
	}
}

var _ = admin.KeyView{}
