//go:build cluster

package gateway_test

// store.redis.wait_replicas: with a replica hung (SIGSTOP), the writes whose loss in a
// failover would give access back answer 503 store_unavailable with Retry-After instead
// of claiming success; with the replica back, they succeed.

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// assertUnconfirmed wants 503 store_unavailable with a Retry-After.
func assertUnconfirmed(t *testing.T, what string, a answer) {
	t.Helper()
	assertRejected(t, a, http.StatusServiceUnavailable, "store_unavailable")
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("%s: Retry-After = %q", what, ra)
	}
}

// waitReplicasRefusal drives every durable write through g while pause hangs the
// replicas, then again after resume.
func waitReplicasRefusal(t *testing.T, tp *topology, pause, resume func()) {
	gs := threeReplicas(t, tp, nil)
	g, other := gs[0], gs[1]
	k1 := g.createKey(g.adminKey, map[string]any{"name": "one", "scopes": []string{"reports:read"}})
	k2 := g.createKey(g.adminKey, map[string]any{"name": "two", "scopes": []string{"reports:read"}})
	alice := g.createUser("alice@example.com", "alice's password", "member")
	la := g.loginAs("alice@example.com", "alice's password", "")
	adm := g.loginAs(adminEmail, adminPass, "")
	wantStatus(t, "k1 cached on the other replica", other.report(k1.Secret), http.StatusOK)

	pause()
	api := g.ups["api"]
	seen := api.count()
	assertUnconfirmed(t, "revoke", g.call("DELETE", keysAPI+k1.ID+"/", g.adminKey, nil))
	// Not confirmed, but the primary has it: no replica keeps serving its cached copy.
	rej, _ := refusedWithin(t, other, k1.Secret, revocationBound)
	assertRejected(t, rej, http.StatusUnauthorized, "revoked_api_key")
	assertUnconfirmed(t, "narrow a key", g.call("PATCH", keysAPI+k2.ID+"/", g.adminKey, map[string]any{"scopes": []string{"dashboards:read"}}))
	assertUnconfirmed(t, "create a key", g.call("POST", keysAPI, g.adminKey, map[string]any{"name": "three", "scopes": []string{"reports:read"}}))
	assertUnconfirmed(t, "disable a user", g.call("PATCH", usersAPI+alice.ID+"/", g.adminKey, map[string]any{"disabled": true}))
	assertUnconfirmed(t, "logout", g.call("POST", logoutAPI, "", map[string]string{"refresh": adm.Refresh}, bearer(adm.Access)))
	if n := api.count(); n != seen {
		t.Errorf("the upstream saw %d requests", n-seen)
	}

	resume()
	k3 := g.createKey(g.adminKey, map[string]any{"name": "four", "scopes": []string{"reports:read"}})
	wantStatus(t, "revoke with the replica back", g.call("DELETE", keysAPI+k3.ID+"/", g.adminKey, nil), http.StatusOK)
	wantStatus(t, "enable alice", g.call("PATCH", usersAPI+alice.ID+"/", g.adminKey, map[string]any{"disabled": false}), http.StatusOK)
	la = g.loginAs("alice@example.com", "alice's password", "")
	wantStatus(t, "logout with the replica back", g.call("POST", logoutAPI, "", map[string]string{"refresh": la.Refresh}, bearer(la.Access)), http.StatusNoContent)
	assertRejected(t, g.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh}), http.StatusUnauthorized, "invalid_token")
	_ = login.LoginAnswer{}
}

// TestSentinelWaitReplicas: Sentinel has a replica, so wait_replicas is on by default
// (auto); with the replica hung, revocations, edits, creation, user changes and logout
// answer 503.
func TestSentinelWaitReplicas(t *testing.T) {
	tp, st := sentinelTopology(t)
	_, replica := st.Primary(t)
	waitReplicasRefusal(t, tp, func() { replica.Pause(t) }, func() { replica.Resume(t) })
}

// TestClusterWaitReplicas: the same on Cluster, every replica hung: the WAIT goes to the
// primary of each written slot.
func TestClusterWaitReplicas(t *testing.T) {
	tp, c := clusterTopology(t)
	var replicas []*redistest.Server
	for _, key := range []string{"{apikeys}", "{users}", "{refresh}"} {
		_, reps := c.PrimaryFor(t, key)
		replicas = append(replicas, reps...)
		t.Logf("replicas of %s: %d", key, len(reps))
	}
	waitReplicasRefusal(t, tp, func() {
		for _, r := range replicas {
			r.Pause(t)
		}
	}, func() {
		for _, r := range replicas {
			r.Resume(t)
		}
	})
}
