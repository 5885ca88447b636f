package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// PATCH {"rate_limit": null} clears a key's rate limit (as {} still does, for older
// clients); a PATCH without rate_limit leaves it; a rate_limit of the wrong shape is 400
// with the field named. Observed through the API and through the limit itself, on Redis.
func TestPatchRateLimitNullClears(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{})
	limited := map[string]any{"requests": 2, "per": "1h"}
	k := g.createKey(g.adminKey, map[string]any{"name": "limited", "scopes": []string{"reports:read"}, "rate_limit": limited})
	keyPath := keysAPI + k.ID + "/"
	show := func() admin.KeyView {
		t.Helper()
		a := g.call("GET", keyPath, g.adminKey, nil)
		wantStatus(t, "show", a, http.StatusOK)
		return decodeJSON[admin.KeyView](t, a)
	}
	for range 2 {
		wantStatus(t, "request within the key's limit", g.report(k.Secret), http.StatusOK)
	}
	assertRejected(t, g.report(k.Secret), http.StatusTooManyRequests, "rate_limited")

	// Absent: unchanged.
	a := g.call("PATCH", keyPath, g.adminKey, map[string]any{"name": "renamed"})
	wantStatus(t, "PATCH name", a, http.StatusOK)
	if v := show(); v.RateLimit == nil || v.RateLimit.Requests != 2 {
		t.Fatalf("a PATCH without rate_limit changed it: %+v", v.RateLimit)
	}

	// null: cleared, and the key is limited by the default again (1000000/min here).
	a = g.call("PATCH", keyPath, g.adminKey, map[string]any{"rate_limit": nil})
	wantStatus(t, "PATCH rate_limit null", a, http.StatusOK)
	if v := decodeJSON[admin.KeyView](t, a); v.RateLimit != nil {
		t.Errorf("PATCH null answered rate_limit %+v, want null", v.RateLimit)
	}
	if v := show(); v.RateLimit != nil {
		t.Fatalf("after PATCH null the key still has rate_limit %+v", v.RateLimit)
	}
	wantStatus(t, "request after the limit is cleared", g.report(k.Secret), http.StatusOK)

	// {}: cleared too.
	wantStatus(t, "PATCH set", g.call("PATCH", keyPath, g.adminKey, map[string]any{"rate_limit": limited}), http.StatusOK)
	if v := show(); v.RateLimit == nil || v.RateLimit.Per != "1h0m0s" && v.RateLimit.Per != "1h" {
		t.Fatalf("PATCH set: %+v", v.RateLimit)
	}
	wantStatus(t, "PATCH rate_limit {}", g.call("PATCH", keyPath, g.adminKey, map[string]any{"rate_limit": map[string]any{}}), http.StatusOK)
	if v := show(); v.RateLimit != nil {
		t.Fatalf("after PATCH {} the key still has rate_limit %+v", v.RateLimit)
	}

	// Wrong shapes: 400 naming the field, nothing changed.
	for _, c := range []struct {
		body any
		want string
	}{
		{map[string]any{"rate_limit": map[string]any{"requests": "ten"}}, `field \"rate_limit.requests\": expected a whole number, got a string`},
		{map[string]any{"rate_limit": map[string]any{"requests": 1, "burst": 2}}, `unknown field \"burst\"`},
		{map[string]any{"rate_limit": []int{1}}, `field \"rate_limit\": expected an object, got an array`},
	} {
		a := g.call("PATCH", keyPath, g.adminKey, c.body)
		assertRejected(t, a, http.StatusBadRequest, "invalid_request")
		if !strings.Contains(string(a.body), c.want) {
			t.Errorf("PATCH %v: %s, want it to contain %s", c.body, a.body, c.want)
		}
	}
	if v := show(); v.RateLimit != nil || v.Name != "renamed" {
		t.Errorf("a refused PATCH changed the key: %+v", v)
	}
}
