package gateway_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// revocationBound is how soon a change made through one replica must be seen by another
// that had the key cached (SPEC section 3: within 1 second).
const revocationBound = time.Second

// twoReplicas serves two gateways on one Redis, with the same bootstrap admin key.
func twoReplicas(tb testing.TB) (a, b *liveGW, rs *redistest.Server) {
	tb.Helper()
	rs = redistest.Start(tb)
	admin := newAdminKey(tb)
	a = serveLive(tb, rs, liveOpts{adminKey: admin})
	b = serveLive(tb, rs, liveOpts{adminKey: admin})
	return a, b, rs
}

// refusedWithin polls key on g until it is refused, within bound, and returns the refusal
// and how long it took. Until then only 200s are acceptable.
func refusedWithin(tb testing.TB, g *liveGW, key string, bound time.Duration) (answer, time.Duration) {
	tb.Helper()
	start := time.Now()
	for {
		a := g.report(key)
		if a.status != http.StatusOK {
			return a, time.Since(start)
		}
		if time.Since(start) > bound {
			tb.Fatalf("key still accepted after %s", bound)
		}
	}
}

// TestAPIKeyReplicasSeeRevocation: a key cached on replica B and revoked (or narrowed)
// through replica A's management API is refused by B within a second.
func TestAPIKeyReplicasSeeRevocation(t *testing.T) {
	t.Parallel()
	a, b, rs := twoReplicas(t)
	w := watchLookups(t, rs)
	k := a.createKey(a.adminKey, map[string]any{"name": "shared", "scopes": []string{"reports:read", "dashboards:read"}})
	k2 := a.createKey(a.adminKey, map[string]any{"name": "narrowed", "scopes": []string{"reports:read", "dashboards:read"}})

	// B caches both keys: the second use reads nothing from Redis.
	wantStatus(t, "first use on B", b.report(k.Secret), http.StatusOK)
	wantStatus(t, "first use on B", b.report(k2.Secret), http.StatusOK)
	before := w.lookups(a.adminKey) // the replicas check the bootstrap key in the background
	wantStatus(t, "cached use on B", b.report(k.Secret), http.StatusOK)
	wantStatus(t, "cached use on B", b.report(k2.Secret), http.StatusOK)
	if d := w.lookups(a.adminKey) - before; d != 0 {
		t.Fatalf("cached uses on B made %d key lookups, want 0 (the premise: B has the keys cached)", d)
	}

	// Revoked through A: B refuses within the bound.
	wantStatus(t, "revoke on A", a.call("DELETE", keysAPI+k.ID+"/", a.adminKey, nil), http.StatusOK)
	seen := b.ups["api"].count()
	rej, took := refusedWithin(t, b, k.Secret, revocationBound)
	assertRejected(t, rej, http.StatusUnauthorized, "revoked_api_key")
	t.Logf("revocation seen on B after %s", took)
	assertRejected(t, b.report(k.Secret), http.StatusUnauthorized, "revoked_api_key")
	if n := b.ups["api"].count(); n > seen {
		t.Logf("B forwarded %d requests before it saw the revocation", n-seen)
	}
	seen = b.ups["api"].count()
	assertRejected(t, b.report(k.Secret), http.StatusUnauthorized, "revoked_api_key")
	if n := b.ups["api"].count(); n != seen {
		t.Errorf("B forwarded a revoked key's request")
	}

	// Narrowed through A: B refuses the route within the bound.
	wantStatus(t, "patch on A", a.call("PATCH", keysAPI+k2.ID+"/", a.adminKey, map[string]any{"scopes": []string{"dashboards:read"}}), http.StatusOK)
	rej, _ = refusedWithin(t, b, k2.Secret, revocationBound)
	assertRejected(t, rej, http.StatusForbidden, "insufficient_scope")

	// A management change on B is seen by A as well (both directions).
	wantStatus(t, "use on A", a.report(k2.Secret), http.StatusForbidden)
	k3 := b.createKey(b.adminKey, map[string]any{"name": "from-b", "scopes": []string{"reports:read"}})
	wantStatus(t, "use on A", a.report(k3.Secret), http.StatusOK)
	wantStatus(t, "revoke on B", b.call("DELETE", keysAPI+k3.ID+"/", b.adminKey, nil), http.StatusOK)
	rej, _ = refusedWithin(t, a, k3.Secret, revocationBound)
	assertRejected(t, rej, http.StatusUnauthorized, "revoked_api_key")

	if n := metricValue(t, b.reg, "authgate_invalidation_lag_seconds", nil); n == 0 {
		t.Errorf("authgate_invalidation_lag_seconds on B observed nothing")
	}
}

// BenchmarkRevocationVisibility measures, per revocation, the time from sending DELETE to
// replica A until replica B (which had the key cached) refuses the key. Run it with
// -benchtime=200x for 200 revocations; it reports p50, p99 and max in milliseconds.
func BenchmarkRevocationVisibility(b *testing.B) {
	ga, gb, _ := twoReplicas(b)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		k := ga.createKey(ga.adminKey, map[string]any{"name": "bench", "scopes": []string{"reports:read"}})
		if a := gb.report(k.Secret); a.status != http.StatusOK {
			b.Fatalf("first use on B: %d %s", a.status, a.body)
		}
		start := time.Now()
		if a := ga.call("DELETE", keysAPI+k.ID+"/", ga.adminKey, nil); a.status != http.StatusOK {
			b.Fatalf("revoke: %d %s", a.status, a.body)
		}
		rej, _ := refusedWithin(b, gb, k.Secret, 2*revocationBound)
		if rej.status != http.StatusUnauthorized {
			b.Fatalf("refusal: %d %s", rej.status, rej.body)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}
