package user

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !validID(id) {
			t.Fatalf("NewID() = %q, not a valid ID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, id := range []string{"", "usr_", "key_" + NewID()[4:], NewID() + "x", NewID()[:23] + "-"} {
		if validID(id) {
			t.Errorf("validID(%q) = true, want false", id)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	tests := []struct {
		email string
		ok    bool
	}{
		{"a@b", true},
		{"first.last+tag@example.co.uk", true},
		{"élodie@exemple.fr", true},
		{strings.Repeat("a", 242) + "@example.com", true},  // 254 bytes
		{strings.Repeat("a", 243) + "@example.com", false}, // 255 bytes
		{"", false},
		{"plain", false},
		{"a@b@c", false},
		{"@example.com", false},
		{"a@", false},
		{"a b@example.com", false},
		{"a@example.com\n", false},
		{"a\x00@example.com", false},
		{"a@exa\xffmple.com", false},
	}
	for _, tt := range tests {
		err := ValidateEmail(tt.email)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidateEmail(%q) = %v, want ok %v", tt.email, err, tt.ok)
		}
	}
	if got := NormalizeEmail("  Bob@Example.COM\t"); got != "bob@example.com" {
		t.Errorf("NormalizeEmail = %q, want bob@example.com", got)
	}
}

// TestUserNeverLeaksSecrets checks that JSON, fmt and slog renderings of a User hold
// neither the password hash nor the TOTP secret.
func TestUserNeverLeaksSecrets(t *testing.T) {
	u := newUser("eve@example.com")
	u.TOTPSecret = "TOTPSECRETVALUE234567"
	u.MFAEnabled = true
	u.CreatedAt, u.UpdatedAt = t0, t0
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := json.Marshal([]User{u})
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("user", "user", u)
	renderings := map[string]string{
		"json": string(b), "json list": string(list), "%v": fmt.Sprintf("%v", u),
		"%+v": fmt.Sprintf("%+v", u), "%s": fmt.Sprintf("%s", u), "slog": logged.String(),
	}
	hashPart := strings.Split(u.PasswordHash, "$")[5]
	for name, s := range renderings {
		for _, secret := range []string{hashPart, "argon2id", u.TOTPSecret} {
			if strings.Contains(s, secret) {
				t.Errorf("%s rendering %s holds a secret", name, s)
			}
		}
		if !strings.Contains(s, u.ID) {
			t.Errorf("%s rendering %s lacks the ID", name, s)
		}
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "email", "role", "organization", "disabled", "mfa_enabled", "teams", "created_at", "updated_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
	if len(fields) != 9 {
		t.Errorf("JSON %s has %d fields, want 9", b, len(fields))
	}
}

// TestRedisLayout checks that every key carries the prefix and the {users} hash tag,
// so that the scripts stay in one Cluster slot.
func TestRedisLayout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := NewStore(rdb, "authgate:", time.Now)
	ctx := t.Context()
	u := newUser("Frank@example.com")
	if err := s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"authgate:{users}:recs": true, "authgate:{users}:emails": true}
	if len(keys) != len(want) {
		t.Errorf("got keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
	}
	if id := rdb.HGet(ctx, "authgate:{users}:emails", "frank@example.com").Val(); id != u.ID {
		t.Errorf("email index holds %q, want %q", id, u.ID)
	}
}

// TestRedisByEmailIsOneRoundTrip uses INFO commandstats to show that the login lookup
// is one Redis command once the script is cached, found or not.
func TestRedisByEmailIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	rdb, admin := srv.Client(t), srv.Client(t)
	s := NewStore(rdb, "authgate:", time.Now)
	ctx := t.Context()
	u := newUser("grace@example.com")
	if err := s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByEmail(ctx, u.Email); err != nil { // loads the script
		t.Fatal(err)
	}
	tests := []struct {
		name, email string
		wantErr     error
	}{
		{"found", "GRACE@example.com", nil},
		{"not found", "nobody@example.com", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := admin.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ByEmail(ctx, tt.email); !errors.Is(err, tt.wantErr) {
				t.Fatalf("ByEmail = %v, want %v", err, tt.wantErr)
			}
			info := admin.Info(ctx, "commandstats").Val()
			// Commands a script runs are counted too: the HGETs inside it are
			// allowed, anything else the client sent is not.
			var calls []string
			evalsha := false
			for _, line := range strings.Split(info, "\n") {
				line = strings.TrimSpace(line)
				name, stats, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
				if !ok || !strings.HasPrefix(line, "cmdstat_") || name == "info" || strings.HasPrefix(name, "config") {
					continue
				}
				calls = append(calls, line)
				switch {
				case name == "evalsha" && strings.HasPrefix(stats, "calls=1,"):
					evalsha = true
				case name != "hget":
					evalsha = false
					t.Errorf("ByEmail sent %s", name)
				}
			}
			if !evalsha {
				t.Errorf("commands run by ByEmail = %v, want one evalsha (and the HGETs inside it)", calls)
			}
		})
	}
}
