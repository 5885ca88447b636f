package apikey

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
)

// rotationStore is the part of both stores that records rotations.
type rotationStore interface {
	store
	MarkRotated(ctx context.Context, id, replacedBy string, end *time.Time) (Key, error)
}

var (
	_ rotationStore = (*MemStore)(nil)
	_ rotationStore = (*Store)(nil)
)

// TestReview07_StoreKeepsHardEnd (issue 9, item 7): a rotation's hard end holds in the
// store itself, so a refresh or edit that read the key before the rotation (and writes
// a far expiry after it) cannot undo the grace period; a later, longer end never moves it.
func TestReview07_StoreKeepsHardEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		rs := s.(rotationStore)
		ctx := context.Background()
		k, _, h := newKey(t, "ci")
		k.ExpiresAt = ptr(clk.Now().Add(90 * 24 * time.Hour))
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		stale := k // read before the rotation
		end := clk.Now().Add(time.Minute)
		got, err := rs.MarkRotated(ctx, k.ID, "key_successor00000000000", &end)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ExpiresAt.Equal(end) || !got.HardExpiresAt.Equal(end) || got.ReplacedBy != "key_successor00000000000" {
			t.Fatalf("marked: expires_at %v, hard_expires_at %v, replaced_by %q", got.ExpiresAt, got.HardExpiresAt, got.ReplacedBy)
		}
		stale.ExpiresAt = ptr(clk.Now().Add(180 * 24 * time.Hour))
		stale.Name = "renamed"
		if err := s.Update(ctx, stale); err != nil {
			t.Fatal(err)
		}
		later := end.Add(time.Hour)
		if _, err := rs.MarkRotated(ctx, k.ID, "key_successor11111111111", &later); err != nil {
			t.Fatal(err)
		}
		got, err = s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "renamed" || !got.ExpiresAt.Equal(end) || !got.HardExpiresAt.Equal(end) {
			t.Errorf("after a stale edit and a later end: name %q, expires_at %v, hard_expires_at %v; want expiry %v", got.Name, got.ExpiresAt, got.HardExpiresAt, end)
		}
		if _, err := rs.MarkRotated(ctx, "key_00000000000000000000", "x", nil); err == nil {
			t.Errorf("MarkRotated of an unknown key: no error")
		}
	})
}

// TestListMintedBy: Query.MintedBy keeps one principal's keys, within a creator's too.
func TestListMintedBy(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, clk *clocktest.Clock) {
		ctx := context.Background()
		var want []string
		for i, by := range []string{"key:key_a", "key:key_b", "key:key_a", ""} {
			k, _, h := newKey(t, "k")
			k.CreatedBy, k.MintedBy = "bootstrap", by
			k.CreatedAt = clk.Now().Add(time.Duration(i) * time.Second)
			if err := s.Create(ctx, k, h); err != nil {
				t.Fatal(err)
			}
			if by == "key:key_a" {
				want = append([]string{k.ID}, want...) // newest first
			}
		}
		p, err := s.List(ctx, Query{CreatedBy: "bootstrap", MintedBy: "key:key_a"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(p.Keys); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("minted by key_a: %v, want %v", got, want)
		}
	})
}
