package issuer_test

// Review test: expected to FAIL until the defect is fixed.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/store"
)

// TestReviewRevocationOutlivedByLeeway: tokens are accepted until exp + jwt.leeway, which
// has no upper bound, so a logout must keep the revocation until then: the login handler
// passes exp + leeway as the revocation's end (gateway/login logout), and Revocations
// keeps it at least that long. With leeway 5m, the token is still refused at exp+2m.
func TestReviewRevocationOutlivedByLeeway(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.New(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	ks, _, err := issuer.LoadOrCreateKeySet(filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	m := &issuer.Minter{Keys: ks, Issuer: "review", TTL: time.Hour, Now: clk.Now}
	tok, c, err := m.Mint(issuer.AccessClaims{Subject: "usr_x"})
	if err != nil {
		t.Fatal(err)
	}
	rv := issuer.NewRevocationsClock(store.NewMemory(clk.Now), clk.Now)
	const leeway = 5 * time.Minute
	if err := rv.Revoke(ctx, c.ID, c.ExpiresAt.Add(leeway)); err != nil {
		t.Fatal(err)
	}
	clk.Set(c.ExpiresAt.Add(2 * time.Minute))
	if _, err := m.Parse(tok, leeway); err != nil {
		t.Fatalf("token not accepted within leeway: %v", err)
	}
	revoked, err := rv.Revoked(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked {
		t.Fatal("logged-out token is valid again (exp+2m, leeway 5m): its revocation was forgotten at exp+1m")
	}
}
