package gateway_test

// Regression tests of issue 9, items 13 (caps on scopes and keys, effective scopes) and
// 14 (made-up credentials and login buckets must not evict good ones).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

// manyScopes is n distinct scopes, reports:read first.
func manyScopes(n int) []string {
	out := []string{"reports:read"}
	for i := 1; i < n; i++ {
		out = append(out, fmt.Sprintf("res%d:read", i))
	}
	return out
}

// listKeys is the keys the management API lists for query, as caller.
func (h *harness) listKeys(caller, query string) []admin.KeyView {
	h.t.Helper()
	a := h.do("GET", "/api/auth/api-keys/?"+query, "", caller)
	if a.status != http.StatusOK {
		h.t.Fatalf("list: %d %s", a.status, a.body)
	}
	return decodeJSON[struct {
		Keys []admin.KeyView `json:"keys"`
	}](h.t, a).Keys
}

// TestReview13_KeyWithTooManyScopesRefused: a key may list at most
// api_keys.max_scopes_per_key scopes (default 64); beyond it, create and edit are
// 400 invalid_request and nothing is stored or changed.
func TestReview13_KeyWithTooManyScopesRefused(t *testing.T) {
	h, adminKey := reviewGateway(t, "optional", 100)
	caller := "X-API-Key: " + adminKey

	_, a := h.reviewCreateKey(caller, map[string]any{"name": "too-many", "scopes": manyScopes(65)})
	assertRejected(t, a, http.StatusBadRequest, "invalid_request")
	if got := h.listKeys(caller, "q=too-many"); len(got) != 0 {
		t.Fatalf("a refused key was stored: %+v", got)
	}
	_, a = h.reviewCreateKey(caller, map[string]any{"name": "review-3801", "scopes": manyScopes(3801)})
	assertRejected(t, a, http.StatusBadRequest, "invalid_request")

	k, a := h.reviewCreateKey(caller, map[string]any{"name": "at-the-cap", "scopes": manyScopes(64)})
	if a.status != http.StatusCreated {
		t.Fatalf("64 scopes: %d %s, want 201", a.status, a.body)
	}
	small, a := h.reviewCreateKey(caller, map[string]any{"name": "small", "scopes": []string{"reports:read"}})
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	e := h.jcall("PATCH", "/api/auth/api-keys/"+small.ID+"/", map[string]any{"scopes": manyScopes(65)}, caller)
	assertRejected(t, e, http.StatusBadRequest, "invalid_request")
	got := h.listKeys(caller, "q=small")
	if len(got) != 1 || len(got[0].Scopes) != 1 {
		t.Fatalf("a refused edit changed the key: %+v", got)
	}
	// The key at the cap works, and forwards its scopes.
	if r := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+k.Secret); r.status != http.StatusOK {
		t.Fatalf("key with 64 scopes: %d %s", r.status, r.body)
	}
	if n := h.ups["api"].count(); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1 (only the good key's)", n)
	}
}

// TestReview13_TokenWithTooManyScopesRefused: a token of a configured issuer carrying more
// than 256 scopes is 401 invalid_token and never reaches the upstream.
func TestReview13_TokenWithTooManyScopesRefused(t *testing.T) {
	h, _ := reviewGateway(t, "optional", 100)
	tok := func(n int) string {
		now := time.Now()
		return mint(t, jose.HS256, []byte(hmacSecret), "", map[string]any{"iss": "https://partner.example.com/",
			"sub": "partner-1", "aud": "api", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"scope": strings.Join(manyScopes(n), " ")})
	}
	a := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+tok(3801))
	assertRejected(t, a, http.StatusUnauthorized, "invalid_token")
	a = h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+tok(257))
	assertRejected(t, a, http.StatusUnauthorized, "invalid_token")
	assertNoRequests(t, h.ups["api"])
	if a := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+tok(256)); a.status != http.StatusOK {
		t.Fatalf("token with 256 scopes: %d %s, want 200", a.status, a.body)
	}
}

// redisGateway is an in-process gateway on rs with a small credential cache (256
// positive entries, 64 negative ones, TTL 1h) and extra YAML.
func redisGateway(t *testing.T, rs *redistest.Server, extra string) *harness {
	t.Helper()
	up := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `store:
  type: redis
  redis: {addrs: ["` + rs.Addr() + `"], key_prefix: "` + redisPrefix + `"}
  cache: {ttl: 1h, max_entries: 256, negative_max_entries: 64}
rate_limits: {mode: local}
upstreams:
  api: {url: "${UP_api}", timeout: 5s}
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
` + extra
	h := newGatewayYAML(t, yaml, ups, env(ups, nil), "")
	// Served, as a deployed gateway is: its invalidation subscriptions and heartbeats keep
	// the credential cache trusted (without them it is trusted for one second only).
	if err := h.s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	rc := rs.Client(t)
	waitFor(t, "the invalidation subscription", func() bool { return subscribers(t, rc) >= 1 })
	return h
}

// TestReview13_KeysPerOwnerCapped: an owner holds at most api_keys.max_keys_per_owner
// active keys; one more is 409 conflict and nothing is stored; revoking one makes room.
// The count and the insert are one Redis script (concurrency: apikey's
// TestReview13_CreateLimitedIsAtomic).
func TestReview13_KeysPerOwnerCapped(t *testing.T) {
	rs := redistest.Start(t)
	h := redisGateway(t, rs, "api_keys: {max_keys_per_owner: 3}\n")
	st := keyStore(t, rs)
	ops, _ := seedKey(t, st, apikey.Key{Name: "ops", Type: apikey.Admin, Environment: apikey.Live,
		Scopes: []string{"*"}, CreatedBy: "ops"})
	caller := "X-API-Key: " + ops
	var made []admin.KeyView
	for i := range 2 { // with the ops key itself, three
		k, a := h.reviewCreateKey(caller, map[string]any{"name": "k" + strconv.Itoa(i), "scopes": []string{"reports:read"}})
		if a.status != http.StatusCreated {
			t.Fatalf("key %d: %d %s", i, a.status, a.body)
		}
		made = append(made, k)
	}
	_, a := h.reviewCreateKey(caller, map[string]any{"name": "one-too-many", "scopes": []string{"reports:read"}})
	assertRejected(t, a, http.StatusConflict, "conflict")
	if got := h.listKeys(caller, "created_by=ops"); len(got) != 3 {
		t.Fatalf("ops holds %d keys after the refusal, want 3", len(got))
	}
	// Rotation makes a key too, so it is refused at the cap as well.
	r := h.jcall("POST", "/api/auth/api-keys/"+made[0].ID+"/rotate/", nil, caller)
	assertRejected(t, r, http.StatusConflict, "conflict")

	if d := h.do("DELETE", "/api/auth/api-keys/"+made[0].ID+"/", "", caller); d.status/100 != 2 {
		t.Fatalf("revoke: %d %s", d.status, d.body)
	}
	if _, a := h.reviewCreateKey(caller, map[string]any{"name": "after-revoke", "scopes": []string{"reports:read"}}); a.status != http.StatusCreated {
		t.Fatalf("after a revoke: %d %s, want 201", a.status, a.body)
	}
	assertNoRequests(t, h.ups["api"])
}

// TestReview14_BadKeyFloodKeepsGoodKeyCached: well-formed made-up keys (the checksum is
// public) each cost one store lookup and a negative cache entry, but negative entries
// have their own bound: a flood of more made-up keys than the whole cache holds does not
// evict a good key, whose next request is still answered without the store.
func TestReview14_BadKeyFloodKeepsGoodKeyCached(t *testing.T) {
	rs := redistest.Start(t)
	w := watchLookups(t, rs) // lookups only: INFO commandstats also counts the HMGET of the last-use script
	h := redisGateway(t, rs, "")
	good, _ := seedKey(t, keyStore(t, rs), apikey.Key{Name: "good", Type: apikey.Admin, Environment: apikey.Live,
		Scopes: []string{"reports:read"}, CreatedBy: "ops"})
	if a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+good); a.status != http.StatusOK {
		t.Fatalf("good key: %d %s", a.status, a.body)
	}
	before := w.lookups()
	const flood = 600 // more than max_entries (256) and negative_max_entries (64) together
	for i := range flood {
		a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+unknownKey(t, "live"))
		if i == 0 {
			assertRejected(t, a, http.StatusUnauthorized, "invalid_api_key")
		} else if a.status != http.StatusUnauthorized {
			t.Fatalf("made-up key %d: %d %s", i, a.status, a.body)
		}
	}
	// One lookup per made-up key.
	if got := w.lookups() - before; got != flood {
		t.Fatalf("the flood cost %d lookups, want %d (one per made-up key)", got, flood)
	}
	before = w.lookups()
	if a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+good); a.status != http.StatusOK {
		t.Fatalf("good key after the flood: %d %s", a.status, a.body)
	}
	if got := w.lookups() - before; got != 0 {
		t.Fatalf("the good key was looked up in the store again after the flood (%d lookups): it was evicted", got)
	}
	if n := h.ups["api"].count(); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2 (the good key's)", n)
	}
	for kind, want := range map[string]float64{"positive": 1, "negative": 64} {
		if got := metricValue(t, h.reg, "authgate_credential_cache_entries", map[string]string{"cache": "keys", "kind": kind}); got != want {
			t.Errorf("authgate_credential_cache_entries{cache=keys,kind=%s} = %v, want %v", kind, got, want)
		}
	}
}

// TestReview14_LoginFloodKeepsKeyLimit: login buckets (one per client address and per
// email, which anyone can create) are kept apart from credentials' buckets, so a flood
// of logins from many addresses with many emails cannot evict a key's bucket and reset
// its limit.
func TestReview14_LoginFloodKeepsKeyLimit(t *testing.T) {
	adminKey := newAdminKey(t)
	up := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
issuer:
  enabled: true
  name: authgate-review
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
bootstrap:
  admin_key: "` + adminKey + `"
rate_limits:
  api_key: {requests: 3, per: 1h}
  login: {requests: 10, per: 1m}
  max_buckets: 16
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
`
	h := newGatewayOpts(t, yaml, ups, env(ups, nil), gateway.Options{PasswordParams: &user.TestParams})
	for range 2 {
		if a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+adminKey); a.status != http.StatusOK {
			t.Fatalf("key within its limit: %d %s", a.status, a.body)
		}
	}
	for i := range 100 { // each a new address and a new email: two new buckets
		r := httptest.NewRequest("POST", "/api/auth/login/", strings.NewReader(
			fmt.Sprintf(`{"email":"nobody%d@example.com","password":"wrong password"}`, i)))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = fmt.Sprintf("[2001:db8:%x::1]:4000", i)
		if a := h.serve(r); a.status != http.StatusUnauthorized {
			t.Fatalf("login %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	if a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+adminKey); a.status != http.StatusOK {
		t.Fatalf("third request: %d %s, want 200", a.status, a.body)
	}
	a := h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+adminKey)
	assertRejected(t, a, http.StatusTooManyRequests, "rate_limited")
	if n := up.count(); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3: the login flood reset the key's limit", n)
	}
}
