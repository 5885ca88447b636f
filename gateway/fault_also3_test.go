package gateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/login"
)

// TestFaultAlso3_RefreshRaceWithinGrace: two tabs, on two replicas, exchange one refresh
// token at once; a third does it again a moment later, within the grace. All three get
// 200 with the same successor refresh token and working access tokens; the family is not
// revoked (the login's access token still works and the successor rotates on).
func TestFaultAlso3_RefreshRaceWithinGrace(t *testing.T) {
	a, b := twoIssuerReplicas(t, map[string]string{"REFRESH_GRACE": "1m"})
	hits := func() int { return a.ups["api"].count() + b.ups["api"].count() }
	l := a.loginAs(adminEmail, adminPass, "")

	var (
		wg   sync.WaitGroup
		got  [2]answer
		tabs = []*liveGW{a, b}
	)
	for i := range tabs {
		wg.Go(func() { got[i] = tabs[i].call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh}) })
	}
	wg.Wait()
	var pairs []login.RefreshAnswer
	for _, r := range got {
		wantStatus(t, "racing refresh", r, http.StatusOK)
		pairs = append(pairs, decodeJSON[login.RefreshAnswer](t, r))
	}
	late := b.call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh})
	wantStatus(t, "refresh again within the grace", late, http.StatusOK)
	pairs = append(pairs, decodeJSON[login.RefreshAnswer](t, late))
	for i, p := range pairs {
		if p.Refresh != pairs[0].Refresh || p.Refresh == l.Refresh || p.Access == "" {
			t.Fatalf("exchange %d: refresh %q, want the one successor %q", i, p.Refresh, pairs[0].Refresh)
		}
	}
	n := hits()
	for _, g := range tabs {
		for _, tok := range []string{l.Access, pairs[0].Access, pairs[1].Access, pairs[2].Access} {
			wantStatus(t, "the family's access tokens", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
		}
	}
	if c := hits(); c != n+8 {
		t.Errorf("upstream saw %d requests, want 8", c-n)
	}
	next := a.call("POST", refreshAPI, "", map[string]string{"refresh": pairs[0].Refresh})
	wantStatus(t, "the successor rotates on", next, http.StatusOK)
	wantStatus(t, "its access token", b.call("GET", "/api/v1/reports/", "", nil, bearer(decodeJSON[login.RefreshAnswer](t, next).Access)), http.StatusOK)
}

// TestFaultAlso3_ReuseAfterGraceRevokesFamily: after the grace a spent refresh token coming
// back is a reuse: 401 invalid_token, the successor is refused too, and every access token
// of the family gets 401 revoked_token at a route on both replicas, the upstream never
// seeing those requests. The grace is short and the test waits it out (the gateway's own
// clock is real time; the stores' clock-driven tests are in gateway/issuer).
func TestFaultAlso3_ReuseAfterGraceRevokesFamily(t *testing.T) {
	const grace = 100 * time.Millisecond
	a, b := twoIssuerReplicas(t, map[string]string{"REFRESH_GRACE": grace.String()})
	hits := func() int { return a.ups["api"].count() + b.ups["api"].count() }
	l := a.loginAs(adminEmail, adminPass, "")
	r := b.call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh})
	wantStatus(t, "refresh", r, http.StatusOK)
	p1 := decodeJSON[login.RefreshAnswer](t, r)
	for _, g := range []*liveGW{a, b} { // cached on both replicas
		for _, tok := range []string{l.Access, p1.Access} {
			wantStatus(t, "the family's tokens before the reuse", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
		}
	}
	time.Sleep(2 * grace)
	n := hits()
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh}), http.StatusUnauthorized, "invalid_token")
	assertRejected(t, b.call("POST", refreshAPI, "", map[string]string{"refresh": p1.Refresh}), http.StatusUnauthorized, "invalid_token")
	for _, g := range []*liveGW{a, b} {
		for _, tok := range []string{p1.Access, l.Access} {
			var got answer
			waitWithin(t, revocationBound, "the family's access tokens to be refused", func() bool {
				got = g.call("GET", "/api/v1/reports/", "", nil, bearer(tok))
				return got.status != http.StatusOK
			})
			assertRejected(t, got, http.StatusUnauthorized, "revoked_token")
		}
	}
	if c := hits(); c != n {
		t.Errorf("the upstreams saw %d requests after the reuse", c-n)
	}
}
