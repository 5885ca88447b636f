package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// hygieneFixture is an API over a memory store on a fake clock, with
// api_keys.hygiene at its defaults, a max_expiry_days and a recorder of events.
type hygieneFixture struct {
	api    *API
	store  *apikey.MemStore
	clk    *clocktest.Clock
	mu     sync.Mutex
	events []Event
}

const hday = 24 * time.Hour

func newHygieneFixture(t *testing.T, maxExpiryDays int) *hygieneFixture {
	t.Helper()
	f := &hygieneFixture{clk: clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.store = apikey.NewMemStore(f.clk.Now)
	logger := slog.New(slog.DiscardHandler)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"event"})
	f.api = New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", KeyPrefix: "sk",
		AllowedExpiryDays: []int{30, 90, 365, 0}, DefaultExpiryDays: 90, Hasher: apikey.NewHasher(""),
		Keys: f.store, Activity: activity.NewMemorySink(), Audit: audit.New(logger, nil, "", events, f.clk.Now),
		Invalidate: func(context.Context, string) error { return nil },
		KeyTag:     func(id string) string { return "key:" + id }, Now: f.clk.Now, Logger: logger,
		Hygiene: func() apikey.Hygiene {
			return apikey.Hygiene{MaxAge: 90 * hday, UnusedAfter: 30 * hday, ExpiringWithin: 7 * hday}
		},
		MaxExpiryDays: func() int { return maxExpiryDays },
		Notify: func(_ context.Context, e Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		}})
	return f
}

// do serves one call as a token of subject with scopes.
func (f *hygieneFixture) do(t *testing.T, method, path, body, subject string, scopes ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.Scopes = "rid", subject, scopes
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r.WithContext(ctx))
	return w
}

func (f *hygieneFixture) create(t *testing.T, body string) KeyView {
	t.Helper()
	w := f.do(t, "POST", "/api/auth/api-keys/", body, "root", "*")
	if w.Code != http.StatusCreated {
		t.Fatalf("create %s: %d %s", body, w.Code, w.Body)
	}
	var v KeyView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHygieneThroughTheAPI ages keys on a fake clock and checks each key's "hygiene"
// field and the stale, unused and expiring list filters, alone, combined, and with the
// existing filters and search.
func TestHygieneThroughTheAPI(t *testing.T) {
	f := newHygieneFixture(t, 0)
	monthly := f.create(t, `{"name":"monthly","expires_in_days":30}`)
	forever := f.create(t, `{"name":"forever","expires_in_days":0}`)
	quarterly := f.create(t, `{"name":"quarterly","expires_in_days":90,"environment":"test"}`)
	if !slices.Equal(monthly.Hygiene, []string{}) {
		t.Fatalf("a new key's hygiene = %v, want []", monthly.Hygiene)
	}
	names := map[string]string{monthly.ID: "monthly", forever.ID: "forever", quarterly.ID: "quarterly"}
	list := func(query string) map[string][]string {
		t.Helper()
		w := f.do(t, "GET", "/api/auth/api-keys/?"+query, "", "root", "*")
		if w.Code != http.StatusOK {
			t.Fatalf("list ?%s: %d %s", query, w.Code, w.Body)
		}
		var p struct {
			Keys []KeyView `json:"keys"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, k := range p.Keys {
			out[names[k.ID]] = k.Hygiene
		}
		return out
	}
	show := func(id string) []string {
		w := f.do(t, "GET", "/api/auth/api-keys/"+id+"/", "", "root", "*")
		var v KeyView
		_ = json.Unmarshal(w.Body.Bytes(), &v)
		return v.Hygiene
	}
	keysOf := func(m map[string][]string) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}

	// Day 24: monthly expires in 6 days.
	f.clk.Advance(24 * hday)
	if err := f.store.TouchLastUsed(t.Context(), map[string]time.Time{quarterly.ID: f.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := show(monthly.ID); !slices.Equal(got, []string{"expiring"}) {
		t.Errorf("day 24: monthly hygiene = %v, want [expiring]", got)
	}
	if got := keysOf(list("expiring=true")); !slices.Equal(got, []string{"monthly"}) {
		t.Errorf("day 24: ?expiring=true = %v, want [monthly]", got)
	}
	// Day 31: monthly expired (no flags), forever never used for 31 days.
	f.clk.Advance(7 * hday)
	all := list("")
	if !slices.Equal(all["monthly"], []string{}) || !slices.Equal(all["forever"], []string{"unused"}) || !slices.Equal(all["quarterly"], []string{}) {
		t.Errorf("day 31: hygiene = %v, want monthly [], forever [unused], quarterly []", all)
	}
	// Day 85: quarterly (used on day 24) is unused and expiring; forever is unused.
	f.clk.Advance(54 * hday)
	if got := show(quarterly.ID); !slices.Equal(got, []string{"unused", "expiring"}) {
		t.Errorf("day 85: quarterly hygiene = %v, want [unused expiring]", got)
	}
	for q, want := range map[string][]string{
		"unused=true":                                {"forever", "quarterly"},
		"unused=true&expiring=true":                  {"quarterly"},
		"unused=1&environment=live":                  {"forever"},
		"unused=true&q=for":                          {"forever"},
		"stale=true":                                 nil,
		"unused=true&status=active&sort=name":        {"forever", "quarterly"},
		"unused=false&expiring=false&status=expired": {"monthly"},
	} {
		if got := keysOf(list(q)); !slices.Equal(got, want) {
			t.Errorf("day 85: ?%s = %v, want %v", q, got, want)
		}
	}
	// Day 91: forever is stale too.
	f.clk.Advance(6 * hday)
	if got := show(forever.ID); !slices.Equal(got, []string{"stale", "unused"}) {
		t.Errorf("day 91: forever hygiene = %v, want [stale unused]", got)
	}
	if got := keysOf(list("stale=true&unused=true")); !slices.Equal(got, []string{"forever"}) {
		t.Errorf("day 91: ?stale=true&unused=true = %v, want [forever]", got)
	}
	// A rotation makes a new key: its age starts again.
	w := f.do(t, "POST", "/api/auth/api-keys/"+forever.ID+"/rotate/", `{"revoke_old_after":"0s"}`, "root", "*")
	var nk KeyView
	if err := json.Unmarshal(w.Body.Bytes(), &nk); err != nil || w.Code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	if !slices.Equal(nk.Hygiene, []string{}) {
		t.Errorf("rotated key hygiene = %v, want []", nk.Hygiene)
	}
	if got := keysOf(list("stale=true")); len(got) != 0 {
		t.Errorf("after rotation ?stale=true = %v, want none (the old key is revoked)", got)
	}

	w = f.do(t, "GET", "/api/auth/api-keys/?stale=maybe", "", "root", "*")
	if w.Code != http.StatusBadRequest || errorCode(t, w) != "invalid_request" {
		t.Errorf("?stale=maybe: %d %s, want 400 invalid_request", w.Code, w.Body)
	}
}

// TestMaxExpiryDays: with api_keys.max_expiry_days, keys other than admin keys cannot be
// made, edited, refreshed or rotated to live "never" or longer: 400 invalid_request, and
// the store is not changed.
func TestMaxExpiryDays(t *testing.T) {
	f := newHygieneFixture(t, 90)
	const user = "usr_member"
	member := []string{"keys:manage", "reports:read"}
	ok := f.do(t, "POST", "/api/auth/api-keys/", `{"name":"ok","expires_in_days":30}`, user, member...)
	if ok.Code != http.StatusCreated {
		t.Fatalf("create 30 days: %d %s", ok.Code, ok.Body)
	}
	var okKey KeyView
	_ = json.Unmarshal(ok.Body.Bytes(), &okKey)
	// A key from before the policy: personal, never expires.
	legacy := apikey.Key{ID: apikey.NewID(), Name: "legacy", Type: apikey.Personal, Environment: apikey.Live,
		CreatedBy: user, MintedBy: apikey.MintedByUser(user), CreatedAt: f.clk.Now()}
	if err := f.store.Create(t.Context(), legacy, apikey.NewHasher("").Hash("sk_legacy")); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		p, err := f.store.List(t.Context(), apikey.Query{Limit: apikey.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Keys)
	}
	before := count()
	for _, c := range []struct{ name, method, path, body string }{
		{"create never", "POST", "/api/auth/api-keys/", `{"name":"n","expires_in_days":0}`},
		{"create 365", "POST", "/api/auth/api-keys/", `{"name":"n","expires_in_days":365}`},
		{"edit to never", "PATCH", "/api/auth/api-keys/" + okKey.ID + "/", `{"expires_in_days":0}`},
		{"edit to 365", "PATCH", "/api/auth/api-keys/" + okKey.ID + "/", `{"expires_in_days":365}`},
		{"refresh a never key", "POST", "/api/auth/api-keys/" + legacy.ID + "/refresh/", ""},
		{"rotate a never key", "POST", "/api/auth/api-keys/" + legacy.ID + "/rotate/", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := f.do(t, c.method, c.path, c.body, user, member...)
			if w.Code != http.StatusBadRequest || errorCode(t, w) != "invalid_request" || !strings.Contains(w.Body.String(), "max_expiry_days") {
				t.Errorf("%d %s, want 400 invalid_request naming max_expiry_days", w.Code, w.Body)
			}
		})
	}
	if got := count(); got != before {
		t.Errorf("refused calls changed the store: %d keys, want %d", got, before)
	}
	if k, _ := f.store.Get(t.Context(), okKey.ID); k.ExpiresInDays != 30 {
		t.Errorf("refused edit changed expires_in_days to %d", k.ExpiresInDays)
	}
	// Other edits of a legacy key still work; admin keys may live forever.
	if w := f.do(t, "PATCH", "/api/auth/api-keys/"+legacy.ID+"/", `{"name":"renamed"}`, user, member...); w.Code != http.StatusOK {
		t.Errorf("rename of a never key: %d %s, want 200", w.Code, w.Body)
	}
	if w := f.do(t, "POST", "/api/auth/api-keys/", `{"name":"adm","type":"admin","expires_in_days":0}`, "root", "*"); w.Code != http.StatusCreated {
		t.Errorf("admin key that never expires: %d %s, want 201", w.Code, w.Body)
	}
	if w := f.do(t, "POST", "/api/auth/api-keys/", `{"name":"p","expires_in_days":90}`, user, member...); w.Code != http.StatusCreated {
		t.Errorf("create at the bound: %d %s, want 201", w.Code, w.Body)
	}
}

// TestKeyEventsNotified: create, rotate and revoke tell Options.Notify, with the key's
// public fields and never its secret.
func TestKeyEventsNotified(t *testing.T) {
	f := newHygieneFixture(t, 0)
	k := f.create(t, `{"name":"evented"}`)
	w := f.do(t, "POST", "/api/auth/api-keys/"+k.ID+"/rotate/", `{"revoke_old_after":"0s"}`, "root", "*")
	var nk KeyView
	_ = json.Unmarshal(w.Body.Bytes(), &nk)
	f.do(t, "DELETE", "/api/auth/api-keys/"+nk.ID+"/", "", "root", "*")
	var got []string
	for _, e := range f.events {
		got = append(got, e.Type+" "+e.Data.Key.ID)
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), k.Secret) || strings.Contains(string(b), nk.Secret) || strings.Contains(string(b), `"start"`) {
			t.Errorf("event %s carries the key or its start: %s", e.Type, b)
		}
		if e.Data.Actor != "root" || e.ID == "" {
			t.Errorf("event %+v: want actor root and an id", e)
		}
	}
	want := []string{"key.created " + k.ID, "key.revoked " + k.ID, "key.created " + nk.ID, "key.revoked " + nk.ID}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}
