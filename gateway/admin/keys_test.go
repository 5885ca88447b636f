package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
)

// flakyStore is a memory store that fails every call while down is set.
type flakyStore struct {
	*apikey.MemStore
	down bool
}

var errDown = errors.New("dial tcp: connection refused")

func (f *flakyStore) Create(ctx context.Context, k apikey.Key, h [32]byte) error {
	if f.down {
		return errDown
	}
	return f.MemStore.Create(ctx, k, h)
}

func (f *flakyStore) Get(ctx context.Context, id string) (apikey.Key, error) {
	if f.down {
		return apikey.Key{}, errDown
	}
	return f.MemStore.Get(ctx, id)
}

func (f *flakyStore) Update(ctx context.Context, k apikey.Key) error {
	if f.down {
		return errDown
	}
	return f.MemStore.Update(ctx, k)
}

func (f *flakyStore) Revoke(ctx context.Context, id string, at time.Time) (apikey.Key, error) {
	if f.down {
		return apikey.Key{}, errDown
	}
	return f.MemStore.Revoke(ctx, id, at)
}

func (f *flakyStore) List(ctx context.Context, q apikey.Query) (apikey.Page, error) {
	if f.down {
		return apikey.Page{}, errDown
	}
	return f.MemStore.List(ctx, q)
}

// fixture is an API over a memory store that records what it invalidated.
type fixture struct {
	api         *API
	store       *flakyStore
	invalidated []string
	invErr      error
	logs        bytes.Buffer
	callerID    string // the admin key f.do calls with
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: &flakyStore{MemStore: apikey.NewMemStore(time.Now)}}
	logger := slog.New(slog.NewJSONHandler(&f.logs, nil))
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"event"})
	f.api = New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", KeyPrefix: "sk",
		AllowedExpiryDays: []int{30, 90, 365, 0}, DefaultExpiryDays: 90, Hasher: apikey.NewHasher(""),
		Keys: f.store, Activity: activity.NewMemorySink(), Audit: audit.New(logger, nil, "", events, time.Now),
		Invalidate: func(_ context.Context, tag string) error {
			f.invalidated = append(f.invalidated, tag)
			return f.invErr
		},
		KeyTag: func(id string) string { return "key:" + id }, Now: time.Now, Logger: logger})
	// The calling key exists, as it does behind the pipeline: keys it makes record it as
	// their minter.
	f.callerID = apikey.NewID()
	caller := apikey.Key{ID: f.callerID, Name: "caller", Type: apikey.Admin, Environment: apikey.Live,
		Scopes: []string{"*"}, CreatedBy: "root", MintedBy: apikey.MintedByBootstrap}
	if err := f.store.Create(context.Background(), caller, apikey.NewHasher("").Hash("sk_caller")); err != nil {
		t.Fatal(err)
	}
	return f
}

// do serves one call as subject with scopes (what the pipeline's authentication sets).
func (f *fixture) do(t *testing.T, method, path, body, subject string, scopes ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	}
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.Scopes, info.KeyID = "rid", subject, scopes, f.callerID
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r.WithContext(ctx))
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return body.Error
}

// create makes a key as the admin and returns its id.
func (f *fixture) create(t *testing.T, body string) string {
	t.Helper()
	w := f.do(t, "POST", "/api/auth/api-keys/", body, "root", "*")
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var k struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &k)
	return k.ID
}

// TestStoreDownIsUnavailable: a store failure is 503 store_unavailable with Retry-After on
// every call, never a 404 or 500 that would tell the user something false.
func TestStoreDownIsUnavailable(t *testing.T) {
	f := newFixture(t)
	id := f.create(t, `{"name":"k"}`)
	f.store.down = true
	calls := []struct{ method, path, body string }{
		{"POST", "/api/auth/api-keys/", `{"name":"new"}`},
		{"GET", "/api/auth/api-keys/", ""},
		{"GET", "/api/auth/api-keys/" + id + "/", ""},
		{"PATCH", "/api/auth/api-keys/" + id + "/", `{"name":"x"}`},
		{"DELETE", "/api/auth/api-keys/" + id + "/", ""},
		{"POST", "/api/auth/api-keys/" + id + "/refresh/", ""},
		{"POST", "/api/auth/api-keys/" + id + "/rotate/", ""},
		{"POST", "/api/refresh_token", ""},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			w := f.do(t, c.method, c.path, c.body, "root", "*")
			if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != "store_unavailable" {
				t.Errorf("got %d %s, want 503 store_unavailable", w.Code, w.Body)
			}
			if w.Header().Get("Retry-After") == "" {
				t.Errorf("no Retry-After")
			}
		})
	}
	if strings.Contains(f.logs.String(), `"msg":"audit"`+`,"event":"revoked"`) {
		t.Errorf("a failed revoke was audited")
	}
}

// TestChangesInvalidate: every change to an existing key drops it from every replica's
// cache; a failed broadcast is logged, and the stored change still stands.
func TestChangesInvalidate(t *testing.T) {
	f := newFixture(t)
	id := f.create(t, `{"name":"k","expires_in_days":30}`)
	if len(f.invalidated) != 0 {
		t.Fatalf("create invalidated %v, want nothing", f.invalidated)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"edit", "PATCH", "/api/auth/api-keys/" + id + "/", `{"scopes":["a:b"]}`, http.StatusOK},
		{"refresh", "POST", "/api/auth/api-keys/" + id + "/refresh/", "", http.StatusOK},
		{"rotate with grace", "POST", "/api/auth/api-keys/" + id + "/rotate/", `{"revoke_old_after":"1h"}`, http.StatusCreated},
		{"revoke", "DELETE", "/api/auth/api-keys/" + id + "/", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.invalidated = nil
			w := f.do(t, tt.method, tt.path, tt.body, "root", "*")
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if !slices.Equal(f.invalidated, []string{"key:" + id}) {
				t.Errorf("invalidated %v, want [key:%s]", f.invalidated, id)
			}
		})
	}
	// A rotate without revoke_old_after leaves the old key alone.
	id2 := f.create(t, `{"name":"k2"}`)
	f.invalidated = nil
	if w := f.do(t, "POST", "/api/auth/api-keys/"+id2+"/rotate/", "", "root", "*"); w.Code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	if len(f.invalidated) != 0 {
		t.Errorf("rotate without revoke_old_after invalidated %v", f.invalidated)
	}
	// The broadcast fails: the revoke stands and says so in the log.
	f.invErr = errors.New("publish: connection refused")
	if w := f.do(t, "DELETE", "/api/auth/api-keys/"+id2+"/", "", "root", "*"); w.Code != http.StatusOK {
		t.Fatalf("revoke with failing broadcast: %d %s", w.Code, w.Body)
	}
	if k, _ := f.store.Get(context.Background(), id2); k.RevokedAt == nil {
		t.Errorf("key not revoked")
	}
	if !strings.Contains(f.logs.String(), "cache invalidation failed") {
		t.Errorf("failed broadcast not logged")
	}
}

// TestInvalidInput: bad requests are 400 invalid_request and change nothing.
func TestInvalidInput(t *testing.T) {
	f := newFixture(t)
	id := f.create(t, `{"name":"k"}`)
	revoked := f.create(t, `{"name":"gone"}`)
	if w := f.do(t, "DELETE", "/api/auth/api-keys/"+revoked+"/", "", "root", "*"); w.Code != http.StatusOK {
		t.Fatal(w.Body)
	}
	tests := []struct{ name, method, path, body string }{
		{"no name", "POST", "/api/auth/api-keys/", `{}`},
		{"blank name", "POST", "/api/auth/api-keys/", `{"name":"  "}`},
		{"unknown field", "POST", "/api/auth/api-keys/", `{"name":"k","owner":"x"}`},
		{"not JSON", "POST", "/api/auth/api-keys/", `name=k`},
		{"expiry not allowed", "POST", "/api/auth/api-keys/", `{"name":"k","expires_in_days":7}`},
		{"bad type", "POST", "/api/auth/api-keys/", `{"name":"k","type":"root"}`},
		{"bad environment", "POST", "/api/auth/api-keys/", `{"name":"k","environment":"prod"}`},
		{"bad allowed_ips", "POST", "/api/auth/api-keys/", `{"name":"k","allowed_ips":["nope"]}`},
		{"scope with space", "POST", "/api/auth/api-keys/", `{"name":"k","scopes":["a b"]}`},
		{"bad rate limit", "POST", "/api/auth/api-keys/", `{"name":"k","rate_limit":{"requests":-1}}`},
		{"edit expiry not allowed", "PATCH", "/api/auth/api-keys/" + id + "/", `{"expires_in_days":1}`},
		{"negative grace", "POST", "/api/auth/api-keys/" + id + "/rotate/", `{"revoke_old_after":"-1s"}`},
		{"grace not a duration", "POST", "/api/auth/api-keys/" + id + "/rotate/", `{"revoke_old_after":"tomorrow"}`},
		{"rotate revoked", "POST", "/api/auth/api-keys/" + revoked + "/rotate/", ""},
		{"refresh revoked", "POST", "/api/auth/api-keys/" + revoked + "/refresh/", ""},
		{"bad limit", "GET", "/api/auth/api-keys/?limit=ten", ""},
		{"bad status", "GET", "/api/auth/api-keys/?status=gone", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.store.List(context.Background(), apikey.Query{Limit: 200})
			w := f.do(t, tt.method, tt.path, tt.body, "root", "*")
			if w.Code != http.StatusBadRequest || errorCode(t, w) != "invalid_request" {
				t.Errorf("got %d %s, want 400 invalid_request", w.Code, w.Body)
			}
			after, _ := f.store.List(context.Background(), apikey.Query{Limit: 200})
			if len(after.Keys) != len(before.Keys) {
				t.Errorf("a refused call created a key")
			}
		})
	}
	if k, _ := f.store.Get(context.Background(), id); k.Name != "k" || k.ExpiresInDays != 90 || k.RevokedAt != nil {
		t.Errorf("key changed by refused calls: %+v", k)
	}
	if w := f.do(t, "PUT", "/api/auth/api-keys/"+id+"/", `{}`, "root", "*"); w.Code != http.StatusMethodNotAllowed || errorCode(t, w) != "method_not_allowed" {
		t.Errorf("PUT: got %d %s, want 405 method_not_allowed", w.Code, w.Body)
	}
	if w := f.do(t, "GET", "/api/auth/nothing/", "", "root", "*"); w.Code != http.StatusNotFound || errorCode(t, w) != "not_found" {
		t.Errorf("unknown call: got %d %s, want 404 not_found", w.Code, w.Body)
	}
}

// TestExternalSubjectIsNotAUser: a token of another issuer whose sub looks like one of
// our user ids does not see, change or create keys as that user.
func TestExternalSubjectIsNotAUser(t *testing.T) {
	f := newFixture(t)
	victim := user.NewID()
	// The victim's personal key, created as the victim (signed in with a token).
	r := httptest.NewRequest("POST", "/api/auth/api-keys/", strings.NewReader(`{"name":"mine","scopes":["reports:read"]}`))
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.Scopes = "rid", victim, []string{"keys:manage", "reports:read"}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r.WithContext(ctx))
	if w.Code != http.StatusCreated {
		t.Fatalf("create as victim: %d %s", w.Code, w.Body)
	}
	var k struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &k)
	as := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		ctx, info := reqinfo.New(r.Context())
		info.ID, info.Subject, info.Issuer, info.Scopes = "rid", victim, "https://idp.example.com/", []string{"keys:manage", "reports:read"}
		w := httptest.NewRecorder()
		f.api.ServeHTTP(w, r.WithContext(ctx))
		return w
	}
	if w := as("GET", "/api/auth/api-keys/"+k.ID+"/", ""); w.Code != http.StatusNotFound {
		t.Errorf("external token read the victim's key: %d %s", w.Code, w.Body)
	}
	if w := as("DELETE", "/api/auth/api-keys/"+k.ID+"/", ""); w.Code != http.StatusNotFound {
		t.Errorf("external token revoked the victim's key: %d %s", w.Code, w.Body)
	}
	w = as("GET", "/api/auth/api-keys/", "")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), k.ID) {
		t.Errorf("external token listed the victim's key: %d %s", w.Code, w.Body)
	}
	w = as("POST", "/api/auth/api-keys/", `{"name":"theirs"}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"created_by":"https://idp.example.com/|`+victim+`"`) {
		t.Errorf("external token's key: %d %s", w.Code, w.Body)
	}
}

// TestKeyCallerBounds: a caller that is itself an API key (not an admin) cannot make or
// change a key wider than itself in any way: each refusal is 403 insufficient_scope and
// stores nothing; keys within its bounds are made.
func TestKeyCallerBounds(t *testing.T) {
	f := newFixture(t)
	caller := f.create(t, `{"name":"ci","scopes":["keys:manage","reports:read"],"environment":"test","allowed_ips":["10.0.0.0/8"],"expires_in_days":90}`)
	// A key the caller minted, widened since by an admin: the caller manages it, within
	// its bounds only.
	sibling := apikey.NewID()
	if err := f.store.Create(context.Background(), apikey.Key{ID: sibling, Name: "wide", Type: apikey.Personal,
		Environment: apikey.Live, Scopes: []string{"*"}, CreatedBy: "root", MintedBy: "key:" + caller},
		apikey.NewHasher("").Hash("sk_wide")); err != nil {
		t.Fatal(err)
	}
	as := func(method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		ctx, info := reqinfo.New(r.Context())
		info.ID, info.Subject, info.KeyID, info.Scopes = "rid", "root", caller, []string{"keys:manage", "reports:read"}
		w := httptest.NewRecorder()
		f.api.ServeHTTP(w, r.WithContext(ctx))
		return w
	}
	count := func() int {
		p, err := f.store.List(context.Background(), apikey.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Keys)
	}
	refusals := []struct{ name, method, path, body string }{
		{"no scopes (the owner's whole role)", "POST", "/api/auth/api-keys/", `{"name":"a","scopes":[],"expires_in_days":30}`},
		{"live from a test key", "POST", "/api/auth/api-keys/", `{"name":"a","environment":"live","expires_in_days":30}`},
		{"IPs outside the caller's", "POST", "/api/auth/api-keys/", `{"name":"a","allowed_ips":["192.168.0.0/16"],"expires_in_days":30}`},
		{"a wider CIDR", "POST", "/api/auth/api-keys/", `{"name":"a","allowed_ips":["10.0.0.0/7"],"expires_in_days":30}`},
		{"never expiring", "POST", "/api/auth/api-keys/", `{"name":"a","expires_in_days":0}`},
		{"outliving the caller", "POST", "/api/auth/api-keys/", `{"name":"a","expires_in_days":365}`},
		{"its own rate limit", "POST", "/api/auth/api-keys/", `{"name":"a","expires_in_days":30,"rate_limit":{"requests":1000000,"per":"1s"}}`},
		{"a scope it lacks", "POST", "/api/auth/api-keys/", `{"name":"a","scopes":["reports:generate"],"expires_in_days":30}`},
		{"rotating a wider sibling", "POST", "/api/auth/api-keys/" + sibling + "/rotate/", ``},
		{"editing a sibling to no IP limit", "PATCH", "/api/auth/api-keys/" + sibling + "/", `{"allowed_ips":[]}`},
	}
	for _, rc := range refusals {
		before := count()
		w := as(rc.method, rc.path, rc.body)
		if w.Code != http.StatusForbidden || errorCode(t, w) != "insufficient_scope" {
			t.Errorf("%s: %d %s, want 403 insufficient_scope", rc.name, w.Code, w.Body)
		}
		if n := count(); n != before {
			t.Errorf("%s: %d keys stored by a refused call", rc.name, n-before)
		}
	}
	// Within its bounds: test, inside 10.0.0.0/8 (inherited when not given), shorter life.
	w := as("POST", "/api/auth/api-keys/", `{"name":"ok","scopes":["reports:read"],"expires_in_days":30}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("a key within bounds: %d %s", w.Code, w.Body)
	}
	var k KeyView
	_ = json.Unmarshal(w.Body.Bytes(), &k)
	if k.Environment != apikey.Test || len(k.AllowedIPs) != 1 || k.AllowedIPs[0] != "10.0.0.0/8" {
		t.Errorf("defaults from the caller: env %s, allowed_ips %v", k.Environment, k.AllowedIPs)
	}
}
