package gateway_test

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestRevocationConfirmedBeforeAnswer: three replicas on one Redis, each with the keys
// cached. A revocation (or a narrowing edit) through A is answered only once B and C
// have dropped their cached copies, so the very next request to B or C, sent after the
// answer with no waiting or polling, is refused and never reaches the upstream.
func TestRevocationConfirmedBeforeAnswer(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	adminKey := newAdminKey(t)
	a := serveLive(t, rs, liveOpts{adminKey: adminKey})
	b := serveLive(t, rs, liveOpts{adminKey: adminKey})
	c := serveLive(t, rs, liveOpts{adminKey: adminKey})
	for _, g := range []*liveGW{a, b, c} {
		waitFor(t, "every replica to hear the other two", func() bool {
			return metricValue(t, g.reg, "authgate_invalidation_peers", map[string]string{"cache": "keys"}) == 2
		})
	}

	for i := range 20 {
		k := a.createKey(a.adminKey, map[string]any{"name": "confirmed", "scopes": []string{"reports:read", "dashboards:read"}})
		for _, g := range []*liveGW{b, c} {
			wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)
		}
		if i%2 == 0 {
			wantStatus(t, "revoke on A", a.call("DELETE", keysAPI+k.ID+"/", a.adminKey, nil), http.StatusOK)
		} else {
			wantStatus(t, "narrow on A", a.call("PATCH", keysAPI+k.ID+"/", a.adminKey, map[string]any{"scopes": []string{"dashboards:read"}}), http.StatusOK)
		}
		for name, g := range map[string]*liveGW{"B": b, "C": c} {
			seen := g.ups["api"].count()
			ans := g.report(k.Secret)
			if i%2 == 0 {
				assertRejected(t, ans, http.StatusUnauthorized, "revoked_api_key")
			} else {
				assertRejected(t, ans, http.StatusForbidden, "insufficient_scope")
			}
			if n := g.ups["api"].count(); n != seen {
				t.Errorf("change %d: %s forwarded the request right after the change was answered", i, name)
			}
		}
	}
	for name, g := range map[string]*liveGW{"A": a, "B": b, "C": c} {
		if n := metricValue(t, g.reg, "authgate_invalidation_unconfirmed_total", nil); n != 0 {
			t.Errorf("%s: authgate_invalidation_unconfirmed_total = %v, want 0", name, n)
		}
	}
}
