package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// TestReview07_RotatedKeyEndsAtItsGrace (issue 9, item 7), on an injected clock: a key
// rotated with revoke_old_after: 60s cannot be refreshed by its holder (self-refresh) or
// a manager, or edited to a longer life, during its grace (409 key_rotated); its expiry
// stays at the hard end, and once that passes it is expired.
func TestReview07_RotatedKeyEndsAtItsGrace(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	clk := clocktest.New(t0)
	keys := apikey.NewMemStore(clk.Now)
	logger := slog.New(slog.DiscardHandler)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"event"})
	api := New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", KeyPrefix: "sk",
		AllowedExpiryDays: []int{30, 90}, DefaultExpiryDays: 90, Hasher: apikey.NewHasher(""), Keys: keys,
		Activity: activity.NewMemorySink(), Audit: audit.New(logger, nil, "", events, clk.Now),
		Invalidate: func(context.Context, string) error { return nil }, KeyTag: func(id string) string { return "key:" + id },
		Now: clk.Now, Logger: logger})
	call := func(method, path, body string, k apikey.Key) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		ctx, info := reqinfo.New(r.Context())
		info.ID, info.Subject, info.KeyID, info.Scopes = "rid", k.CreatedBy, k.ID, k.Scopes
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r.WithContext(ctx))
		return w
	}
	get := func(id string) apikey.Key {
		t.Helper()
		k, err := keys.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	root := apikey.Key{ID: apikey.NewID(), Name: "root", Type: apikey.Admin, Environment: apikey.Live,
		Scopes: []string{"*"}, CreatedBy: "bootstrap", MintedBy: apikey.MintedByBootstrap}
	if err := keys.Create(context.Background(), root, apikey.NewHasher("").Hash("sk_root")); err != nil {
		t.Fatal(err)
	}
	w := call("POST", "/api/auth/api-keys/", `{"name":"ci","scopes":["reports:read"],"expires_in_days":90}`, root)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var created KeyView
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	if w := call("POST", "/api/auth/api-keys/"+created.ID+"/rotate/", `{"revoke_old_after":"60s"}`, root); w.Code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	end := t0.Add(60 * time.Second)
	old := get(created.ID)
	if old.HardExpiresAt == nil || !old.HardExpiresAt.Equal(end) || !old.ExpiresAt.Equal(end) || old.ReplacedBy == "" {
		t.Fatalf("after rotation: expires_at %v, hard_expires_at %v, replaced_by %q; want %v", old.ExpiresAt, old.HardExpiresAt, old.ReplacedBy, end)
	}

	clk.Advance(30 * time.Second)
	refusals := []struct {
		name, method, path, body string
		as                       apikey.Key
	}{
		{"self-refresh", "POST", "/api/refresh_token", "", old},
		{"refresh by an admin", "POST", "/api/auth/api-keys/" + old.ID + "/refresh/", "", root},
		{"longer life by an admin", "PATCH", "/api/auth/api-keys/" + old.ID + "/", `{"expires_in_days":90}`, root},
	}
	for _, rc := range refusals {
		w := call(rc.method, rc.path, rc.body, rc.as)
		if w.Code != http.StatusConflict || errorCode(t, w) != "key_rotated" {
			t.Errorf("%s: %d %s, want 409 key_rotated", rc.name, w.Code, w.Body)
		}
		if k := get(old.ID); !k.ExpiresAt.Equal(end) {
			t.Errorf("%s: expires_at moved to %v, want %v", rc.name, k.ExpiresAt, end)
		}
	}
	// Other edits still work, and keep the end.
	if w := call("PATCH", "/api/auth/api-keys/"+old.ID+"/", `{"name":"ci-old"}`, root); w.Code != http.StatusOK {
		t.Errorf("rename: %d %s", w.Code, w.Body)
	}
	if k := get(old.ID); k.Status(clk.Now()) != apikey.StatusActive || !k.ExpiresAt.Equal(end) {
		t.Errorf("in its grace: status %s, expires_at %v", k.Status(clk.Now()), k.ExpiresAt)
	}

	clk.Advance(31 * time.Second)
	if k := get(old.ID); k.Status(clk.Now()) != apikey.StatusExpired {
		t.Errorf("after its grace: status %s, want expired", k.Status(clk.Now()))
	}
	if w := call("POST", "/api/refresh_token", "", old); w.Code != http.StatusConflict || errorCode(t, w) != "key_rotated" {
		t.Errorf("self-refresh after the grace: %d %s, want 409 key_rotated", w.Code, w.Body)
	}
}
