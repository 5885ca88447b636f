package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// fuzzCalls are the management calls whose JSON bodies FuzzManagementJSON feeds; %s is
// the target key's or user's id.
var fuzzCalls = []struct{ method, path string }{
	{"POST", "/api/auth/api-keys/"},
	{"PATCH", "/api/auth/api-keys/%s/"},
	{"POST", "/api/auth/api-keys/%s/rotate/"},
	{"POST", "/api/auth/users/"},
	{"PATCH", "/api/auth/users/%s/"},
}

// fuzzWorld is a fresh API on memory stores with the callers and targets of one input.
type fuzzWorld struct {
	api     *API
	keys    *apikey.MemStore
	users   *user.MemStore
	roles   map[string][]string
	now     time.Time
	callers []caller
	manager apikey.Key // the non-admin key caller (callers[2])
	target  apikey.Key // a key every caller may manage: minted by manager
	member  user.User  // the users calls' target
}

var fuzzExpiryDays = []int{30, 90, 365, 0}

func newFuzzWorld(t *testing.T) *fuzzWorld {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	w := &fuzzWorld{keys: apikey.NewMemStore(clock), users: user.NewMemStore(clock), now: now,
		roles: map[string][]string{"admin": {"*"}, "member": {"reports:*", "keys:manage"}}}
	logger := slog.New(slog.DiscardHandler)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"event"})
	w.api = New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", KeyPrefix: "sk",
		AllowedExpiryDays: fuzzExpiryDays, DefaultExpiryDays: 90, Hasher: apikey.NewHasher(""), Keys: w.keys,
		Activity: activity.NewMemorySink(), Audit: audit.New(logger, nil, "", events, clock),
		Invalidate: func(context.Context, string) error { return nil }, KeyTag: func(id string) string { return "key:" + id },
		Users: w.users, Roles: func() map[string][]string { return w.roles }, PasswordParams: user.TestParams,
		OnUserChange: func(context.Context, string, UserChange) error { return nil }, Now: clock, Logger: logger})
	root := user.User{ID: user.NewID(), Email: "root@example.com", Role: "admin"}
	w.member = user.User{ID: user.NewID(), Email: "ann@example.com", Role: "member"}
	for _, u := range []user.User{root, w.member} {
		if err := w.users.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(k apikey.Key) apikey.Key {
		t.Helper()
		k.ID, k.Name, k.CreatedAt = apikey.NewID(), "k", now
		plain, err := apikey.Generate("sk", k.Environment)
		if err != nil {
			t.Fatal(err)
		}
		k.Start = plain[:apikey.StartLen]
		if err := w.keys.Create(ctx, k, apikey.NewHasher("").Hash(plain)); err != nil {
			t.Fatal(err)
		}
		return k
	}
	adminKey := mk(apikey.Key{Type: apikey.Admin, Environment: apikey.Live, Scopes: []string{"*"}, CreatedBy: root.ID,
		MintedBy: apikey.MintedByUser(root.ID)})
	w.manager = mk(apikey.Key{Type: apikey.Personal, Environment: apikey.Test, Scopes: []string{"keys:manage", "reports:read"},
		AllowedIPs: []string{"10.0.0.0/8"}, CreatedBy: w.member.ID, MintedBy: apikey.MintedByUser(w.member.ID),
		ExpiresAt: Expiry(now, 90), ExpiresInDays: 90})
	w.target = mk(apikey.Key{Type: apikey.Personal, Environment: apikey.Test, Scopes: []string{"reports:read"},
		AllowedIPs: []string{"10.1.0.0/16"}, CreatedBy: w.member.ID, MintedBy: apikey.MintedByKey(w.manager),
		ExpiresAt: Expiry(now, 30), ExpiresInDays: 30})
	w.callers = []caller{
		{subject: root.ID, scopes: []string{"*"}},                             // an admin's token
		{subject: w.member.ID, scopes: w.roles["member"]},                     // a member's token
		{subject: w.member.ID, keyID: w.manager.ID, scopes: w.manager.Scopes}, // a member's keys:manage key
		{subject: root.ID, keyID: adminKey.ID, scopes: []string{"*"}},         // an admin key
	}
	return w
}

// serve sends body as call with caller c.
func (w *fuzzWorld) serve(call int, c caller, body []byte) *httptest.ResponseRecorder {
	fc := fuzzCalls[call]
	path := fc.path
	if strings.Contains(path, "%s") {
		id := w.target.ID
		if strings.Contains(path, "/users/") {
			id = w.member.ID
		}
		path = fmt.Sprintf(path, id)
	}
	r := httptest.NewRequest(fc.method, path, bytes.NewReader(body))
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.KeyID, info.Scopes = "rid", c.subject, c.keyID, c.scopes
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r.WithContext(ctx))
	return rec
}

func (w *fuzzWorld) allKeys(t *testing.T) []apikey.Key {
	t.Helper()
	p, err := w.keys.List(context.Background(), apikey.Query{Limit: apikey.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return p.Keys
}

func (w *fuzzWorld) allUsers(t *testing.T) []user.User {
	t.Helper()
	us, err := w.users.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// checkKey reports what is wrong with a stored key: the API's own rules on every field.
func checkKey(k apikey.Key) error {
	name := strings.TrimSpace(k.Name)
	switch {
	case name == "" || len(name) > 100 || name != k.Name || !utf8.ValidString(k.Name):
		return fmt.Errorf("name %q", k.Name)
	case len(k.Description) > 1000:
		return fmt.Errorf("description of %d bytes", len(k.Description))
	case k.Type != apikey.Personal && k.Type != apikey.Admin:
		return fmt.Errorf("type %q", k.Type)
	case k.Environment != apikey.Live && k.Environment != apikey.Test:
		return fmt.Errorf("environment %q", k.Environment)
	case !slices.Contains(fuzzExpiryDays, k.ExpiresInDays):
		return fmt.Errorf("expires_in_days %d", k.ExpiresInDays)
	case k.MintedBy == "":
		return fmt.Errorf("no minted_by")
	case k.RateLimit != nil && (k.RateLimit.Requests <= 0 || k.RateLimit.Per < time.Second):
		return fmt.Errorf("rate_limit %+v", *k.RateLimit)
	case k.HardExpiresAt != nil && (k.ExpiresAt == nil || k.ExpiresAt.After(*k.HardExpiresAt)):
		return fmt.Errorf("expires_at %v beyond the hard end %v", k.ExpiresAt, k.HardExpiresAt)
	}
	for _, s := range k.Scopes {
		if s == "" || len(s) > 128 || strings.ContainsAny(s, " \t\r\n,") {
			return fmt.Errorf("scope %q", s)
		}
	}
	for _, s := range k.AllowedIPs {
		if _, err := parseAllowed(s); err != nil {
			return fmt.Errorf("allowed_ips %q", s)
		}
	}
	return nil
}

// checkWithin reports how k is wider than the key caller m: what a key may make or change.
func checkWithin(k, m apikey.Key) error {
	b := &keyBounds{env: m.Environment, expires: m.ExpiresAt}
	for _, s := range m.AllowedIPs {
		p, _ := parseAllowed(s)
		b.ips = append(b.ips, p)
	}
	if err := b.check(k); err != nil {
		return err
	}
	if !policy.GrantsAll(m.Scopes, k.Scopes) || k.Type != apikey.Personal || k.RateLimit != nil {
		return fmt.Errorf("scopes %v, type %s, rate_limit %v", k.Scopes, k.Type, k.RateLimit)
	}
	return nil
}

// FuzzManagementJSON feeds arbitrary bytes as the JSON body of the management calls
// (create, edit and rotate key; create and edit user) through the real handlers, as an
// admin's token, a member's token, a member's keys:manage key and an admin key. No input
// panics or answers 5xx (the stores are in memory and never fail); every answer is JSON
// with an error code when it is a refusal; every stored key and user stays valid; and
// what a non-admin caller did stays within what it may do.
func FuzzManagementJSON(f *testing.F) {
	seeds := []string{
		`{"name":"ci","scopes":["reports:read"],"expires_in_days":30}`,
		`{"name":"ci","scopes":["reports:read"],"expires_in_days":30,"environment":"test","allowed_ips":["10.2.0.0/16"]}`,
		`{"name":"adm","type":"admin","scopes":["*"],"expires_in_days":0}`,
		`{"name":"x","rate_limit":{"requests":5,"per":"1s"}}`,
		`{"name":"x","rate_limit":{}}`,
		`{"scopes":[]}`,
		`{"allowed_ips":["::ffff:10.0.0.1","10.0.0.0/33"]}`,
		`{"expires_in_days":365}`,
		`{"revoke_old_after":"60s"}`,
		`{"revoke_old_after":"0s"}`,
		`{"revoke_old_after":"-1h"}`,
		`{"email":"bob@example.com","password":"bob's long password","role":"member"}`,
		`{"role":"admin","disabled":true,"organization":"acme"}`,
		`{"mfa_enabled":false,"email":"x"}`,
		`{"name":"\u0000"}`,
		`{"name":"a"} {"name":"b"}`,
		`[]`, `null`, `{"name":1e999}`, ``,
	}
	for call := range fuzzCalls {
		for as := range 4 {
			for _, s := range seeds {
				f.Add(uint8(call), uint8(as), []byte(s))
			}
		}
	}
	f.Fuzz(func(t *testing.T, call, as uint8, body []byte) {
		w := newFuzzWorld(t)
		c := w.callers[int(as)%len(w.callers)]
		usersBefore := w.allUsers(t)
		adminKeysBefore := 0
		for _, k := range w.allKeys(t) {
			if k.Type == apikey.Admin {
				adminKeysBefore++
			}
		}
		rec := w.serve(int(call)%len(fuzzCalls), c, body)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %d is not a JSON object: %q", rec.Code, rec.Body)
		}
		if code, _ := answer["error"].(string); rec.Code >= 400 && code == "" {
			t.Fatalf("refusal %d without an error code: %s", rec.Code, rec.Body)
		}

		adminKeys := 0
		for _, k := range w.allKeys(t) {
			if err := checkKey(k); err != nil {
				t.Fatalf("stored key %s invalid after %d: %v", k.ID, rec.Code, err)
			}
			if k.Type == apikey.Admin {
				adminKeys++
			}
			if c.keyID == w.manager.ID && k.MintedBy == apikey.MintedByKey(w.manager) {
				if err := checkWithin(k, w.manager); err != nil {
					t.Fatalf("the keys:manage key left key %s wider than itself: %v (answer %d %s)", k.ID, err, rec.Code, rec.Body)
				}
			}
		}
		if !c.admin() && adminKeys != adminKeysBefore {
			t.Fatalf("a non-admin caller changed the number of admin keys (%d -> %d)", adminKeysBefore, adminKeys)
		}

		users := w.allUsers(t)
		for _, u := range users {
			if _, ok := w.roles[u.Role]; !ok || user.ValidateEmail(u.Email) != nil || len(u.Organization) > 256 {
				t.Fatalf("stored user invalid after %d: %+v", rec.Code, u)
			}
		}
		if !c.admin() {
			b, _ := json.Marshal(usersBefore)
			a, _ := json.Marshal(users)
			if !bytes.Equal(a, b) {
				t.Fatalf("a non-admin caller changed the users (answer %d %s)", rec.Code, rec.Body)
			}
		}
		if fc := fuzzCalls[int(call)%len(fuzzCalls)]; rec.Code/100 == 2 && strings.Contains(fc.path, "/api-keys/") {
			// The key answered is the key stored, and a new key's secret is well-formed.
			id, _ := answer["id"].(string)
			k, err := w.keys.Get(context.Background(), id)
			if err != nil {
				t.Fatalf("answer %d names key %q, not stored: %v", rec.Code, id, err)
			}
			if secret, ok := answer["key"].(string); ok {
				if _, err := apikey.Parse(secret, "sk"); err != nil || !strings.HasPrefix(secret, k.Start) {
					t.Fatalf("new key's secret is not a well-formed key of %s: %v", id, err)
				}
			}
		}
	})
}
