package apikey

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"

	"github.com/authgate/authgate/gateway/clocktest"
)

// store is the method set MemStore and Store share; the contract tests run on both.
type store interface {
	Create(ctx context.Context, k Key, hash [32]byte) error
	Get(ctx context.Context, id string) (Key, error)
	ByHash(ctx context.Context, hash [32]byte) (Key, error)
	Update(ctx context.Context, k Key) error
	Revoke(ctx context.Context, id string, at time.Time) (Key, error)
	TouchLastUsed(ctx context.Context, used map[string]time.Time) error
	List(ctx context.Context, q Query) (Page, error)
}

var (
	_ store = (*MemStore)(nil)
	_ store = (*Store)(nil)
)

// t0 is the fixtures' epoch.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// forEachStore runs fn against a MemStore and a Store on a real redis-server, each
// fresh and with a clock at t0+50 days.
func forEachStore(t *testing.T, fn func(t *testing.T, s store, clk *clocktest.Clock)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		clk := clocktest.New(t0.Add(50 * 24 * time.Hour))
		fn(t, NewMemStore(clk.Now), clk)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		clk := clocktest.New(t0.Add(50 * 24 * time.Hour))
		fn(t, NewStore(srv.Client(t), "test:", clk.Now), clk)
	})
	t.Run("redis small batches", func(t *testing.T) {
		// List reads the index in round trips of 2 members, to exercise the walk's
		// continuation.
		srv := redistest.Start(t)
		clk := clocktest.New(t0.Add(50 * 24 * time.Hour))
		s := NewStore(srv.Client(t), "", clk.Now)
		s.batch = 2
		fn(t, s, clk)
	})
}

func ptr(t time.Time) *time.Time { return &t }

// newKey returns a valid key, its plaintext and hash.
func newKey(t *testing.T, name string) (Key, string, [32]byte) {
	t.Helper()
	plain, err := Generate("sk", Live)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{
		ID: NewID(), Name: name, Description: "for tests", Type: Personal, Environment: Live,
		Scopes: []string{"orders:read"}, AllowedIPs: []string{"10.0.0.0/8"}, CreatedBy: "alice",
		CreatedAt: t0, ExpiresAt: ptr(t0.Add(90 * 24 * time.Hour)), ExpiresInDays: 90,
		Start: plain[:StartLen], RateLimit: &RateLimit{Requests: 10, Per: time.Minute},
	}
	return k, plain, NewHasher("").Hash(plain)
}

// sameKey fails unless got and want encode to the same JSON.
func sameKey(t *testing.T, got, want Key) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("got key\n%s\nwant\n%s", g, w)
	}
}

func TestStoreCreateGetByHash(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		ctx := t.Context()
		k, _, h := newKey(t, "first")
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		sameKey(t, got, k)
		got, err = s.ByHash(ctx, h)
		if err != nil {
			t.Fatalf("ByHash: %v", err)
		}
		sameKey(t, got, k)

		// A returned key is a copy: changing it does not change the store.
		got.Scopes[0] = "changed"
		again, _ := s.Get(ctx, k.ID)
		sameKey(t, again, k)

		other, _, otherHash := newKey(t, "other")
		tests := []struct {
			name string
			key  Key
			hash [32]byte
			want error
		}{
			{"duplicate hash", other, h, ErrConflict},
			{"duplicate id", func() Key { o := other; o.ID = k.ID; return o }(), otherHash, ErrConflict},
			{"bad id", func() Key { o := other; o.ID = "key_short"; return o }(), otherHash, ErrInvalid},
			{"bad type", func() Key { o := other; o.Type = "root"; return o }(), otherHash, ErrInvalid},
			{"bad environment", func() Key { o := other; o.Environment = "prod"; return o }(), otherHash, ErrInvalid},
			{"empty name", func() Key { o := other; o.Name = ""; return o }(), otherHash, ErrInvalid},
			{"NUL in name", func() Key { o := other; o.Name = "a\x00b"; return o }(), otherHash, ErrInvalid},
			{"bad rate limit", func() Key { o := other; o.RateLimit = &RateLimit{}; return o }(), otherHash, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := s.Create(ctx, tt.key, tt.hash); !errors.Is(err, tt.want) {
					t.Errorf("Create = %v, want %v", err, tt.want)
				}
			})
		}
		if _, err := s.ByHash(ctx, otherHash); !errors.Is(err, ErrNotFound) {
			t.Errorf("a refused Create stored something: ByHash = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, NewID()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.ByHash(ctx, [32]byte{1}); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByHash(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		k, _, h := newKey(t, "Old Name")
		other, _, oh := newKey(t, "older sibling")
		for _, c := range []struct {
			k Key
			h [32]byte
		}{{k, h}, {other, oh}} {
			if err := s.Create(ctx, c.k, c.h); err != nil {
				t.Fatal(err)
			}
		}
		edit := k
		edit.Name = "New Name"
		edit.Description = "edited"
		edit.Scopes = []string{"a", "b"}
		edit.AllowedIPs = nil
		edit.ExpiresAt = nil
		edit.ExpiresInDays = 0
		edit.RateLimit = nil
		// Fields that Update must not change:
		edit.CreatedBy = "mallory"
		edit.Type = Admin
		edit.CreatedAt = t0.Add(time.Hour)
		edit.Start = "sk_live_XXXX"
		if err := s.Update(ctx, edit); err != nil {
			t.Fatalf("Update: %v", err)
		}
		want := k
		want.Name, want.Description, want.Scopes, want.AllowedIPs = "New Name", "edited", []string{"a", "b"}, nil
		want.ExpiresAt, want.ExpiresInDays, want.RateLimit = nil, 0, nil
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameKey(t, got, want)
		byHash, _ := s.ByHash(ctx, h)
		sameKey(t, byHash, want)

		searches := []struct {
			q, by string
			want  []string
		}{
			{"new", "", []string{k.ID}},
			{"NEW NA", "alice", []string{k.ID}},
			{"old", "", []string{other.ID}},
			{"old name", "", nil},
			{"old", "alice", []string{other.ID}},
			{"new", "mallory", nil},
		}
		for _, sc := range searches {
			for _, sort := range []string{SortName, SortCreatedAt} {
				p, err := s.List(ctx, Query{Q: sc.q, CreatedBy: sc.by, Sort: sort})
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p.Keys); strings.Join(got, ",") != strings.Join(sc.want, ",") {
					t.Errorf("List(q=%q by=%q sort=%s) = %v, want %v", sc.q, sc.by, sort, got, sc.want)
				}
			}
		}
		// The expiry index moved: the edited key never expires, so it sorts last.
		p, _ := s.List(ctx, Query{Sort: SortExpiresAt, Order: Asc, CreatedBy: "alice"})
		if got := ids(p.Keys); len(got) != 2 || got[1] != k.ID {
			t.Errorf("expires_at asc = %v, want %s last", got, k.ID)
		}
		clk.Set(t0.Add(1000 * 24 * time.Hour)) // other has expired by then, k never does
		p, _ = s.List(ctx, Query{Status: StatusActive})
		if got := ids(p.Keys); len(got) != 1 || got[0] != k.ID {
			t.Errorf("active after the sibling expired = %v, want [%s]", got, k.ID)
		}

		missing := edit
		missing.ID = NewID()
		if err := s.Update(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update(unknown) = %v, want ErrNotFound", err)
		}
		bad := edit
		bad.Name = ""
		if err := s.Update(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Update(empty name) = %v, want ErrInvalid", err)
		}
	})
}

func TestStoreRevokeAndStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		k, _, h := newKey(t, "to revoke")
		k.ExpiresAt = ptr(t0.Add(60 * 24 * time.Hour))
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		status := func() string {
			t.Helper()
			got, err := s.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.Status(clk.Now())
		}
		if got := status(); got != StatusActive {
			t.Errorf("status at day 50 = %q, want active", got)
		}
		clk.Set(t0.Add(60 * 24 * time.Hour))
		if got := status(); got != StatusExpired {
			t.Errorf("status at day 60 = %q, want expired", got)
		}
		clk.Set(t0.Add(10 * 24 * time.Hour))
		at := t0.Add(11 * 24 * time.Hour)
		got, err := s.Revoke(ctx, k.ID, at)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at)
		}
		if got := status(); got != StatusRevoked {
			t.Errorf("status after revoke = %q, want revoked", got)
		}
		byHash, _ := s.ByHash(ctx, h)
		if byHash.Status(clk.Now()) != StatusRevoked {
			t.Errorf("ByHash after revoke: status %q, want revoked", byHash.Status(clk.Now()))
		}
		again, err := s.Revoke(ctx, k.ID, at.Add(time.Hour))
		if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(at) {
			t.Errorf("second Revoke = %v, %v; want the first time %v kept", again.RevokedAt, err, at)
		}
		if _, err := s.Revoke(ctx, NewID(), at); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreTouchLastUsed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		ctx := t.Context()
		a, _, ah := newKey(t, "a")
		b, _, bh := newKey(t, "b")
		b.CreatedBy = "bob"
		for _, c := range []struct {
			k Key
			h [32]byte
		}{{a, ah}, {b, bh}} {
			if err := s.Create(ctx, c.k, c.h); err != nil {
				t.Fatal(err)
			}
		}
		t1 := t0.Add(time.Hour + 1500*time.Microsecond) // stored at ms precision
		t2 := t0.Add(2 * time.Hour)
		if err := s.TouchLastUsed(ctx, map[string]time.Time{a.ID: t1, b.ID: t2, NewID(): t2}); err != nil {
			t.Fatalf("TouchLastUsed: %v", err)
		}
		// An older time does not move the last use back.
		if err := s.TouchLastUsed(ctx, map[string]time.Time{b.ID: t1}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			id   string
			hash [32]byte
			want time.Time
		}{
			{a.ID, ah, t0.Add(time.Hour + time.Millisecond)},
			{b.ID, bh, t2},
		}
		for _, tt := range tests {
			for _, get := range []func() (Key, error){
				func() (Key, error) { return s.Get(ctx, tt.id) },
				func() (Key, error) { return s.ByHash(ctx, tt.hash) },
			} {
				k, err := get()
				if err != nil {
					t.Fatal(err)
				}
				if k.LastUsedAt == nil || !k.LastUsedAt.Equal(tt.want) {
					t.Errorf("%s LastUsedAt = %v, want %v", tt.id, k.LastUsedAt, tt.want)
				}
			}
		}
		p, _ := s.List(ctx, Query{Sort: SortLastUsedAt, Order: Desc})
		if got := ids(p.Keys); strings.Join(got, ",") != b.ID+","+a.ID {
			t.Errorf("last_used_at desc = %v, want [%s %s]", got, b.ID, a.ID)
		}
		// The creator's index moved too.
		if err := s.TouchLastUsed(ctx, map[string]time.Time{a.ID: t2.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		p, _ = s.List(ctx, Query{Sort: SortLastUsedAt, Order: Desc, CreatedBy: "alice"})
		if got := ids(p.Keys); len(got) != 1 || got[0] != a.ID || !p.Keys[0].LastUsedAt.Equal(t2.Add(time.Hour)) {
			t.Errorf("alice by last_used_at = %v, want [%s] used at %v", got, a.ID, t2.Add(time.Hour))
		}
		if err := s.TouchLastUsed(ctx, nil); err != nil {
			t.Errorf("TouchLastUsed(nil) = %v", err)
		}
	})
}

// TestStoreNoSecretInJSON checks that no public encoding of a record holds the hash,
// in any usual form, or any part of the plaintext beyond Start.
func TestStoreNoSecretInJSON(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		ctx := t.Context()
		k, plain, h := newKey(t, "secretive")
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		var encs []string
		add := func(k Key, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			encs = append(encs, string(b), fmt.Sprintf("%+v", k))
		}
		add(s.Get(ctx, k.ID))
		add(s.ByHash(ctx, h))
		p, err := s.List(ctx, Query{})
		add(p.Keys[0], err)
		add(s.Revoke(ctx, k.ID, t0))

		forbidden := []string{
			hex.EncodeToString(h[:]), strings.ToUpper(hex.EncodeToString(h[:])),
			base64.StdEncoding.EncodeToString(h[:]), base64.RawURLEncoding.EncodeToString(h[:]),
			string(h[:]), fmt.Sprint(h[:]), plain,
		}
		// Any 6 characters of the plaintext past Start.
		for i := StartLen; i+6 <= len(plain); i++ {
			forbidden = append(forbidden, plain[i:i+6])
		}
		for _, enc := range encs {
			if !strings.Contains(enc, plain[:StartLen]) {
				t.Errorf("encoding lacks Start %q: %s", plain[:StartLen], enc)
			}
			for _, f := range forbidden {
				if strings.Contains(enc, f) {
					t.Errorf("encoding %s contains secret material %q", enc, f)
				}
			}
		}
	})
}

func TestStoreConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		ctx := t.Context()
		k, _, h := newKey(t, "busy")
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 10 {
			wg.Go(func() {
				for j := range 10 {
					var err error
					switch j % 4 {
					case 0:
						e := k
						e.Name = fmt.Sprintf("busy %d", i)
						err = s.Update(ctx, e)
					case 1:
						err = s.TouchLastUsed(ctx, map[string]time.Time{k.ID: t0.Add(time.Duration(i*10+j) * time.Second)})
					case 2:
						_, err = s.ByHash(ctx, h)
					case 3:
						_, err = s.List(ctx, Query{Q: "busy"})
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, _ := s.Get(ctx, k.ID)
		if want := t0.Add(99 * time.Second); got.LastUsedAt == nil || !got.LastUsedAt.Equal(want) {
			t.Errorf("LastUsedAt = %v, want the latest %v", got.LastUsedAt, want)
		}
		for _, sort := range []string{SortName, SortCreatedAt} {
			p, _ := s.List(ctx, Query{Q: "BUSY", Sort: sort})
			if len(p.Keys) != 1 || p.Keys[0].Name != got.Name {
				t.Errorf("sort %s after concurrent renames: got %d keys, want 1 named %q", sort, len(p.Keys), got.Name)
			}
		}
	})
}

// ids returns the IDs of keys in order.
func ids(keys []Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

// TestStoreTouchLastUsedLargeBatch touches more keys than one touch script call
// takes, so the Redis pipeline holds several calls.
func TestStoreTouchLastUsedLargeBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		ctx := t.Context()
		used := map[string]time.Time{}
		for i := range 2*touchChunk + 10 {
			k, _, h := newKey(t, fmt.Sprintf("bulk %03d", i))
			if err := s.Create(ctx, k, h); err != nil {
				t.Fatal(err)
			}
			used[k.ID] = day(10).Add(time.Duration(i) * time.Second)
		}
		if err := s.TouchLastUsed(ctx, used); err != nil {
			t.Fatalf("TouchLastUsed: %v", err)
		}
		q := Query{Sort: SortLastUsedAt, Order: Desc, Limit: MaxLimit}
		got := listAll(t, s, q)
		if len(got) != len(used) {
			t.Fatalf("listed %d keys, want %d", len(got), len(used))
		}
		for i, id := range got {
			// Desc: the key touched last (highest i) comes first.
			want := day(10).Add(time.Duration(len(used)-1-i) * time.Second)
			if !used[id].Equal(want) {
				t.Fatalf("position %d: %s used at %v, want %v", i, id, used[id], want)
			}
			k, err := s.Get(ctx, id)
			if err != nil || k.LastUsedAt == nil || !k.LastUsedAt.Equal(want) {
				t.Fatalf("Get(%s).LastUsedAt = %v, %v; want %v", id, k.LastUsedAt, err, want)
			}
		}
	})
}
