package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/user"
)

// usersFixture is an API with a users store, recording the changes it announces.
type usersFixture struct {
	api     *API
	users   *user.MemStore
	changes []UserChange
	root    string // an admin user's id
}

func newUsersFixture(t *testing.T) *usersFixture {
	t.Helper()
	f := &usersFixture{users: user.NewMemStore(time.Now)}
	logger := slog.New(slog.DiscardHandler)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"event"})
	roles := map[string][]string{"admin": {"*"}, "viewer": {"reports:read"}}
	f.api = New(Options{Prefix: "/api/auth", RefreshTokenPath: "/api/refresh_token", KeyPrefix: "sk",
		AllowedExpiryDays: []int{30}, DefaultExpiryDays: 30, Hasher: apikey.NewHasher(""), Keys: apikey.NewMemStore(time.Now),
		Audit: audit.New(logger, nil, "", events, time.Now), Now: time.Now, Logger: logger,
		Users: f.users, Roles: func() map[string][]string { return roles }, PasswordParams: user.TestParams,
		OnUserChange: func(_ context.Context, _ string, ch UserChange) error { f.changes = append(f.changes, ch); return nil }})
	f.root = user.NewID()
	if err := f.users.Create(context.Background(), user.User{ID: f.root, Email: "root@example.com", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *usersFixture) call(method, path, body, subject string, scopes ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	ctx, info := reqinfo.New(r.Context())
	info.ID, info.Subject, info.Scopes = "rid", subject, scopes
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r.WithContext(ctx))
	return w
}

// TestUsersAPIRefusals: every refusal of the users calls, with its status and code, and
// that a refused call changes nothing and announces nothing.
func TestUsersAPIRefusals(t *testing.T) {
	f := newUsersFixture(t)
	w := f.call("POST", "/api/auth/users/", `{"email":"ann@example.com","password":"ann's long password","role":"viewer"}`, f.root, "*")
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var ann user.User
	_ = json.Unmarshal(w.Body.Bytes(), &ann)
	if strings.Contains(w.Body.String(), "argon2") || ann.Role != "viewer" {
		t.Fatalf("created user: %s", w.Body)
	}
	annPath := "/api/auth/users/" + ann.ID + "/"
	tests := []struct {
		name, method, path, body, subject string
		scopes                            []string
		status                            int
		code                              string
	}{
		{"list as a non-admin", "GET", "/api/auth/users/", "", ann.ID, []string{"reports:read", "keys:manage"}, 403, "insufficient_scope"},
		{"create as a non-admin", "POST", "/api/auth/users/", `{"email":"b@example.com","password":"long enough pw","role":"viewer"}`, ann.ID, []string{"keys:manage"}, 403, "insufficient_scope"},
		{"edit as a non-admin", "PATCH", annPath, `{"role":"admin"}`, ann.ID, []string{"keys:manage"}, 403, "insufficient_scope"},
		{"edit oneself as a non-admin", "PATCH", "/api/auth/users/me/", `{"role":"admin"}`, ann.ID, []string{"keys:manage"}, 403, "insufficient_scope"},
		{"delete as a non-admin", "DELETE", annPath, "", ann.ID, []string{"keys:manage"}, 403, "insufficient_scope"},
		{"unknown role", "POST", "/api/auth/users/", `{"email":"b@example.com","password":"long enough pw","role":"root"}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"missing password", "POST", "/api/auth/users/", `{"email":"b@example.com","role":"viewer"}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"short password", "POST", "/api/auth/users/", `{"email":"b@example.com","password":"short","role":"viewer"}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"bad email", "POST", "/api/auth/users/", `{"email":"not an email","password":"long enough pw","role":"viewer"}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"duplicate email", "POST", "/api/auth/users/", `{"email":"ANN@example.com","password":"long enough pw","role":"viewer"}`, f.root, []string{"*"}, 409, "conflict"},
		{"unknown field", "PATCH", annPath, `{"is_admin":true}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"turning MFA on for someone", "PATCH", annPath, `{"mfa_enabled":true}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"unknown user", "PATCH", "/api/auth/users/" + user.NewID() + "/", `{"role":"viewer"}`, f.root, []string{"*"}, 404, "not_found"},
		{"not a user id", "GET", "/api/auth/users/key_x/", "", f.root, []string{"*"}, 404, "not_found"},
		{"disabling oneself", "PATCH", "/api/auth/users/me/", `{"disabled":true}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"giving up admin", "PATCH", "/api/auth/users/" + f.root + "/", `{"role":"viewer"}`, f.root, []string{"*"}, 400, "invalid_request"},
		{"deleting oneself", "DELETE", "/api/auth/users/" + f.root + "/", "", f.root, []string{"*"}, 400, "invalid_request"},
		{"me without a user", "GET", "/api/auth/users/me/", "", "bootstrap", []string{"*"}, 404, "not_found"},
	}
	for _, tt := range tests {
		before, _ := f.users.List(context.Background())
		w := f.call(tt.method, tt.path, tt.body, tt.subject, tt.scopes...)
		var body struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != tt.status || body.Error != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, w.Code, w.Body, tt.status, tt.code)
		}
		after, _ := f.users.List(context.Background())
		if len(after) != len(before) || !reflect.DeepEqual(after[len(after)-1], before[len(before)-1]) || !reflect.DeepEqual(after[0], before[0]) {
			t.Errorf("%s: a refused call changed the users", tt.name)
		}
	}
	if len(f.changes) != 0 {
		t.Errorf("refused calls announced changes: %+v", f.changes)
	}
	// The message names the field once.
	w = f.call("POST", "/api/auth/users/", `{"email":"c@example.com","password":"short","role":"viewer"}`, f.root, "*")
	var short struct {
		Message string `json:"message"`
	}
	if _ = json.Unmarshal(w.Body.Bytes(), &short); short.Message != "password: shorter than 10 characters" {
		t.Errorf("short password: message %q, want %q", short.Message, "password: shorter than 10 characters")
	}
	// A new password ends the user's sessions (epoch) and says so.
	w = f.call("PATCH", annPath, `{"password":"ann's new long password"}`, f.root, "*")
	if w.Code != http.StatusOK || len(f.changes) != 1 || !f.changes[0].Sessions {
		t.Fatalf("password change: %d %s, changes %+v", w.Code, w.Body, f.changes)
	}
	if got, _ := f.users.Get(context.Background(), ann.ID); got.SessionEpoch != 1 {
		t.Errorf("session epoch %d after a new password, want 1", got.SessionEpoch)
	}
}
