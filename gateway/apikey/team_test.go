package apikey

import (
	"errors"
	"slices"
	"testing"

	"github.com/authgate/authgate/gateway/clocktest"
)

// TestStoreTeam: a key's team is stored, edited by Update, and filtered by List
// (a team, all teams, or no team).
func TestStoreTeam(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := t.Context()
		mk := func(name, team, typ string) Key {
			k, _, h := newKey(t, name)
			k.Team, k.Type = team, typ
			if err := s.Create(ctx, k, h); err != nil {
				t.Fatal(err)
			}
			return k
		}
		a := mk("a", "team-a", Personal)
		b := mk("b", "team-b", Personal)
		all := mk("all", AllTeams, Admin)
		legacy := mk("legacy", "", Personal)
		oldAdmin := mk("old admin", "", Admin)
		list := func(team string) []string {
			t.Helper()
			p, err := s.List(ctx, Query{Team: team, Sort: SortName})
			if err != nil {
				t.Fatal(err)
			}
			return ids(p.Keys)
		}
		for team, want := range map[string][]string{
			"team-a": {a.ID}, "team-b": {b.ID}, AllTeams: {all.ID, oldAdmin.ID}, NoTeam: {legacy.ID},
			"": {a.ID, all.ID, b.ID, legacy.ID, oldAdmin.ID},
		} {
			if got := list(team); !slices.Equal(got, want) {
				t.Errorf("team %q: %v, want %v", team, got, want)
			}
		}
		a.Team = "team-b"
		if err := s.Update(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, a.ID); got.Team != "team-b" {
			t.Errorf("after edit: team %q", got.Team)
		}
		a.Team = "bad/team"
		if err := s.Update(ctx, a); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad team: %v, want ErrInvalid", err)
		}
		if legacy.TeamOf() != "" || (Key{Type: Admin}).TeamOf() != AllTeams || b.TeamOf() != "team-b" {
			t.Error("TeamOf: a personal key without team acts for none, an admin key without team for all")
		}
	})
}
