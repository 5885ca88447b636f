package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/authgate/authgate/gateway/clocktest"
)

// teamStore is the team method set MemStore and Store share.
type teamStore interface {
	store
	CreateTeam(ctx context.Context, t Team) (Team, error)
	GetTeam(ctx context.Context, id string) (Team, error)
	ListTeams(ctx context.Context) ([]Team, error)
	RenameTeam(ctx context.Context, id, name string) (Team, error)
	DeleteTeam(ctx context.Context, id string) ([]string, error)
	AddMember(ctx context.Context, teamID, userID string) (User, error)
	RemoveMember(ctx context.Context, teamID, userID string) (User, error)
}

var (
	_ teamStore = (*MemStore)(nil)
	_ teamStore = (*Store)(nil)
)

func newMember(t *testing.T, s store, email, org string) User {
	t.Helper()
	u := User{ID: NewID(), Email: email, Role: "member", Organization: org}
	if err := s.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTeams_Lifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store, clk *clocktest.Clock) {
		s := st.(teamStore)
		ctx := context.Background()
		if _, err := s.CreateTeam(ctx, Team{ID: "acme", Name: "Acme", Organization: "o1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTeam(ctx, Team{ID: "acme", Name: "Other", Organization: "o1"}); !errors.Is(err, ErrTeamConflict) {
			t.Fatalf("duplicate id: %v, want ErrTeamConflict", err)
		}
		for _, bad := range []Team{{ID: "*", Name: "x"}, {ID: "..", Name: "x"}, {ID: "a/b", Name: "x"}, {ID: "a%2Fb", Name: "x"}, {ID: "ok", Name: " "}, {ID: "", Name: "x"}} {
			if _, err := s.CreateTeam(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateTeam(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
		beta, err := s.CreateTeam(ctx, Team{ID: NewTeamID(), Name: "beta", Organization: "o1"})
		if err != nil {
			t.Fatal(err)
		}
		ann := newMember(t, s, "ann@example.com", "o1")
		bob := newMember(t, s, "bob@example.com", "o1")
		eve := newMember(t, s, "eve@example.com", "o2")
		if u, err := s.Get(ctx, ann.ID); err != nil || u.Teams == nil || len(u.Teams) != 0 {
			t.Fatalf("new user's teams = %#v, %v; want [] (not null)", u.Teams, err)
		}
		for _, add := range []struct{ team, user string }{{"acme", ann.ID}, {beta.ID, ann.ID}, {"acme", bob.ID}, {"acme", ann.ID}} {
			if _, err := s.AddMember(ctx, add.team, add.user); err != nil {
				t.Fatalf("AddMember(%s, %s): %v", add.team, add.user, err)
			}
		}
		if _, err := s.AddMember(ctx, "acme", eve.ID); !errors.Is(err, ErrInvalid) {
			t.Errorf("member of another organisation: %v, want ErrInvalid", err)
		}
		if _, err := s.AddMember(ctx, "nope", ann.ID); !errors.Is(err, ErrTeamNotFound) {
			t.Errorf("unknown team: %v, want ErrTeamNotFound", err)
		}
		if _, err := s.AddMember(ctx, "acme", NewID()); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v, want ErrNotFound", err)
		}
		if u, _ := s.Get(ctx, ann.ID); !slices.Equal(u.Teams, []string{"acme", beta.ID}) {
			t.Errorf("ann's teams = %v", u.Teams)
		}
		if tm, err := s.RenameTeam(ctx, "acme", "Acme Corp"); err != nil || tm.Name != "Acme Corp" {
			t.Errorf("rename: %+v %v", tm, err)
		}
		if got, _ := s.GetTeam(ctx, "acme"); got.Name != "Acme Corp" || got.Organization != "o1" {
			t.Errorf("renamed team = %+v", got)
		}
		teams, err := s.ListTeams(ctx)
		if err != nil || len(teams) != 2 || teams[0].ID != "acme" {
			t.Errorf("ListTeams = %+v, %v", teams, err)
		}
		if u, err := s.RemoveMember(ctx, beta.ID, ann.ID); err != nil || !slices.Equal(u.Teams, []string{"acme"}) {
			t.Errorf("RemoveMember: %v %v", u.Teams, err)
		}
		members, err := s.DeleteTeam(ctx, "acme")
		if err != nil || !slices.Equal(members, sorted(ann.ID, bob.ID)) {
			t.Fatalf("DeleteTeam = %v, %v; want both members", members, err)
		}
		for _, id := range []string{ann.ID, bob.ID} {
			if u, _ := s.Get(ctx, id); len(u.Teams) != 0 {
				t.Errorf("%s still in %v after the team was deleted", id, u.Teams)
			}
		}
		if _, err := s.GetTeam(ctx, "acme"); !errors.Is(err, ErrTeamNotFound) {
			t.Errorf("deleted team: %v", err)
		}
		if _, err := s.DeleteTeam(ctx, "acme"); !errors.Is(err, ErrTeamNotFound) {
			t.Errorf("delete again: %v", err)
		}
	})
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestTeams_ConcurrentMembership: many concurrent joins and leaves of one user, and a
// concurrent edit of the same user, lose nothing (each change is a compare-and-swap).
func TestTeams_ConcurrentMembership(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store, clk *clocktest.Clock) {
		s := st.(teamStore)
		ctx := context.Background()
		u := newMember(t, s, "c@example.com", "")
		const n = 12
		for i := range n {
			if _, err := s.CreateTeam(ctx, Team{ID: fmt.Sprintf("t%d", i), Name: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AddMember(ctx, fmt.Sprintf("t%d", i), u.ID); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Modify(ctx, u.ID, func(x *User) error { x.Role = "viewer"; return nil }); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		got, _ := s.Get(ctx, u.ID)
		if len(got.Teams) != n || got.Role != "viewer" {
			t.Errorf("after concurrent changes: teams %v role %s; want %d teams and viewer", got.Teams, got.Role, n)
		}
	})
}
