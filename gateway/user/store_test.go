package user

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"

	"github.com/authgate/authgate/gateway/clocktest"
)

// store is the method set MemStore and Store share; the contract tests run on both.
type store interface {
	Create(ctx context.Context, u User) error
	Get(ctx context.Context, id string) (User, error)
	ByEmail(ctx context.Context, email string) (User, error)
	Update(ctx context.Context, u User) error
	Modify(ctx context.Context, id string, fn func(*User) error) (User, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]User, error)
	Count(ctx context.Context) (int, error)
}

var (
	_ store = (*MemStore)(nil)
	_ store = (*Store)(nil)
)

// t0 is the fixtures' epoch.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// forEachStore runs fn against a MemStore and a Store on a real redis-server, each
// fresh and with a clock at t0.
func forEachStore(t *testing.T, fn func(t *testing.T, s store, clk *clocktest.Clock)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		clk := clocktest.New(t0)
		fn(t, NewMemStore(clk.Now), clk)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		clk := clocktest.New(t0)
		fn(t, NewStore(srv.Client(t), "test:", clk.Now), clk)
	})
}

// testHash is a valid password hash, made once.
var testHash = sync.OnceValue(func() string {
	h, err := HashPassword(goodPassword, TestParams)
	if err != nil {
		return "bad: " + err.Error()
	}
	return h
})

func newUser(email string) User {
	return User{
		ID: NewID(), Email: email, PasswordHash: testHash(), Role: "member",
		Organization: "Acme", TOTPSecret: "JBSWY3DPEHPK3PXP",
	}
}

// sameUser fails unless got and want agree on every field, secrets included.
func sameUser(t *testing.T, got, want User) {
	t.Helper()
	g, w := fmt.Sprintf("%#v", record(got)), fmt.Sprintf("%#v", record(want))
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("got times %v/%v, want %v/%v", got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got.Teams == nil {
		got.Teams = []string{}
	}
	if want.Teams == nil {
		want.Teams = []string{}
	}
	if !reflect.DeepEqual(record(got), record(want)) {
		t.Errorf("got user\n%s\nwant\n%s", g, w)
	}
}

func TestStoreCreateGetByEmail(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		u := newUser("  Alice@Example.COM ")
		if err := s.Create(ctx, u); err != nil {
			t.Fatalf("Create: %v", err)
		}
		want := u
		want.Email = "alice@example.com"
		want.CreatedAt, want.UpdatedAt = t0, t0
		got, err := s.Get(ctx, u.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		sameUser(t, got, want)
		for _, email := range []string{"alice@example.com", "ALICE@example.com", " alice@EXAMPLE.com\t"} {
			got, err := s.ByEmail(ctx, email)
			if err != nil {
				t.Fatalf("ByEmail(%q): %v", email, err)
			}
			sameUser(t, got, want)
		}
		if ok, err := VerifyPassword(got.PasswordHash, goodPassword); !ok || err != nil {
			t.Errorf("stored hash does not verify: %v, %v", ok, err)
		}

		other := newUser("bob@example.com")
		tests := []struct {
			name string
			user User
			want error
		}{
			{"duplicate email", func() User { o := other; o.Email = "ALICE@example.com"; return o }(), ErrConflict},
			{"duplicate id", func() User { o := other; o.ID = u.ID; return o }(), ErrConflict},
			{"bad id", func() User { o := other; o.ID = "usr_short"; return o }(), ErrInvalid},
			{"no email", func() User { o := other; o.Email = " "; return o }(), ErrInvalid},
			{"two @", func() User { o := other; o.Email = "bob@x@example.com"; return o }(), ErrInvalid},
			{"no @", func() User { o := other; o.Email = "bob.example.com"; return o }(), ErrInvalid},
			{"space", func() User { o := other; o.Email = "bo b@example.com"; return o }(), ErrInvalid},
			{"empty domain", func() User { o := other; o.Email = "bob@"; return o }(), ErrInvalid},
			{"too long", func() User { o := other; o.Email = string(make([]byte, 250)) + "@x.io"; return o }(), ErrInvalid},
			{"bad hash", func() User { o := other; o.PasswordHash = "plaintext!"; return o }(), ErrInvalid},
			{"NUL in role", func() User { o := other; o.Role = "a\x00"; return o }(), ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := s.Create(ctx, tt.user); !errors.Is(err, tt.want) {
					t.Errorf("Create = %v, want %v", err, tt.want)
				}
			})
		}
		if _, err := s.ByEmail(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a refused Create stored something: ByEmail = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, NewID()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if n, err := s.Count(ctx); n != 1 || err != nil {
			t.Errorf("Count = %d, %v, want 1, nil", n, err)
		}
	})
}

func TestStoreUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		u, bob := newUser("alice@example.com"), newUser("bob@example.com")
		for _, x := range []User{u, bob} {
			if err := s.Create(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		clk.Set(t0.Add(time.Hour))
		newHash, err := HashPassword("a new password", TestParams)
		if err != nil {
			t.Fatal(err)
		}
		edit := u
		edit.Email = " Alice.New@Example.com"
		edit.PasswordHash = newHash
		edit.Role = "admin"
		edit.Organization = "Initech"
		edit.Disabled = true
		edit.TOTPSecret = ""
		edit.MFAEnabled = true
		edit.CreatedAt = t0.Add(-time.Hour) // ignored: Update keeps CreatedAt
		if err := s.Update(ctx, edit); err != nil {
			t.Fatalf("Update: %v", err)
		}
		want := edit
		want.Email = "alice.new@example.com"
		want.CreatedAt, want.UpdatedAt = t0, t0.Add(time.Hour)
		got, err := s.Get(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameUser(t, got, want)
		if !got.Disabled {
			t.Error("got Disabled false, want true")
		}
		if _, err := s.ByEmail(ctx, "alice@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("old email: ByEmail = %v, want ErrNotFound", err)
		}
		if got, err := s.ByEmail(ctx, "ALICE.NEW@example.com"); err != nil || got.ID != u.ID {
			t.Errorf("new email: ByEmail = %s, %v, want %s", got.ID, err, u.ID)
		}
		// The old email is free again.
		if err := s.Create(ctx, newUser("alice@example.com")); err != nil {
			t.Errorf("Create with the freed email = %v, want nil", err)
		}

		tests := []struct {
			name string
			user User
			want error
		}{
			{"email of another user", func() User { e := want; e.Email = "BOB@example.com"; return e }(), ErrConflict},
			{"unknown id", func() User { e := want; e.ID = NewID(); e.Email = "x@example.com"; return e }(), ErrNotFound},
			{"bad email", func() User { e := want; e.Email = "nope"; return e }(), ErrInvalid},
			{"bad id", func() User { e := want; e.ID = "usr_x"; return e }(), ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := s.Update(ctx, tt.user); !errors.Is(err, tt.want) {
					t.Errorf("Update = %v, want %v", err, tt.want)
				}
				got, err := s.Get(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				sameUser(t, got, want) // a refused Update changes nothing
				if got, err := s.ByEmail(ctx, "bob@example.com"); err != nil || got.ID != bob.ID {
					t.Errorf("ByEmail(bob) = %s, %v, want %s", got.ID, err, bob.ID)
				}
			})
		}

		// Updating without changing the email keeps the index.
		same := want
		same.Role = "viewer"
		if err := s.Update(ctx, same); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ByEmail(ctx, "alice.new@example.com"); err != nil || got.Role != "viewer" {
			t.Errorf("ByEmail after update = %+v, %v, want role viewer", got, err)
		}
	})
}

func TestStoreDisable(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		u := newUser("carol@example.com")
		if err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		for _, disabled := range []bool{true, false} {
			got, err := s.ByEmail(ctx, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			got.Disabled = disabled
			if err := s.Update(ctx, got); err != nil {
				t.Fatal(err)
			}
			got, err = s.ByEmail(ctx, u.Email)
			if err != nil || got.Disabled != disabled {
				t.Errorf("Disabled = %v (%v), want %v", got.Disabled, err, disabled)
			}
			if got.PasswordHash != u.PasswordHash || got.TOTPSecret != u.TOTPSecret {
				t.Error("disabling changed the secrets")
			}
		}
	})
}

func TestStoreDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		u := newUser("dave@example.com")
		if err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, u.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if _, err := s.ByEmail(ctx, u.Email); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByEmail after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
		if err := s.Create(ctx, newUser(u.Email)); err != nil {
			t.Errorf("Create with a deleted user's email = %v, want nil", err)
		}
	})
}

func TestStoreListCount(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		if n, err := s.Count(ctx); n != 0 || err != nil {
			t.Errorf("empty: Count = %d, %v, want 0, nil", n, err)
		}
		if got, err := s.List(ctx); len(got) != 0 || err != nil {
			t.Errorf("empty: List = %v, %v, want none", got, err)
		}
		emails := []string{"zed@example.com", "Amy@example.com", "bob@example.com", "amy.b@example.com", "m@example.com"}
		for _, e := range emails {
			if err := s.Create(ctx, newUser(e)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var gotEmails []string
		for _, u := range got {
			gotEmails = append(gotEmails, u.Email)
			if u.PasswordHash == "" || u.TOTPSecret == "" {
				t.Errorf("List lost the secrets of %s", u.Email)
			}
		}
		want := []string{"amy.b@example.com", "amy@example.com", "bob@example.com", "m@example.com", "zed@example.com"}
		if !slices.Equal(gotEmails, want) {
			t.Errorf("List order = %v, want %v", gotEmails, want)
		}
		if n, err := s.Count(ctx); n != len(emails) || err != nil {
			t.Errorf("Count = %d, %v, want %d, nil", n, err, len(emails))
		}
	})
}

// TestStoreConcurrentCreateSameEmail shows that of many concurrent Creates with one
// email exactly one wins.
func TestStoreConcurrentCreateSameEmail(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		const n = 16
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { errs <- s.Create(ctx, newUser("Race@Example.com")) })
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrConflict):
				t.Errorf("Create = %v, want nil or ErrConflict", err)
			}
		}
		if c, _ := s.Count(ctx); ok != 1 || c != 1 {
			t.Errorf("%d Creates succeeded, Count %d; want 1 and 1", ok, c)
		}
	})
}

// TestStoreModifyKeepsConcurrentChanges: Modify re-reads when the user changed between its
// read and its write, so it never undoes another writer's change (an admin disabling the
// user while the user enrols TOTP).
func TestStoreModifyKeepsConcurrentChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := context.Background()
		u := newUser("ann@example.com")
		if err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		calls := 0
		got, err := s.Modify(ctx, u.ID, func(cur *User) error {
			calls++
			if _, mem := s.(*MemStore); calls == 1 && !mem {
				// Another writer lands between Modify's read and its write. (The memory
				// store runs fn under its lock, so nobody can.)
				other, err := s.Get(ctx, u.ID)
				if err != nil {
					return err
				}
				other.Disabled = true
				if err := s.Update(ctx, other); err != nil {
					return err
				}
			} else if mem {
				cur.Disabled = true
			}
			cur.TOTPSecret = "JBSWY3DPEHPK3PXP"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Disabled || got.TOTPSecret == "" {
			t.Errorf("after Modify: disabled=%t secret set=%t; want both (the concurrent disable kept)", got.Disabled, got.TOTPSecret != "")
		}
		stored, err := s.Get(ctx, u.ID)
		if err != nil || !stored.Disabled || stored.TOTPSecret == "" {
			t.Errorf("stored: %+v, %v", stored, err)
		}
		if _, ok := s.(*Store); ok && calls != 2 {
			t.Errorf("fn ran %d times, want 2 (once more after the conflict)", calls)
		}
		wantErr := errors.New("stop")
		if _, err := s.Modify(ctx, u.ID, func(*User) error { return wantErr }); !errors.Is(err, wantErr) {
			t.Errorf("fn's error: got %v", err)
		}
		if _, err := s.Modify(ctx, NewID(), func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})
}
