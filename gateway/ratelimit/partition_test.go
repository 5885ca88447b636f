package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
)

// TestReview14_LoginFloodKeepsCredentialBucket: buckets anyone can create (one per client
// address or email tried at login) live in limiters of their own, so flooding them never
// evicts a credential's bucket, which would give the credential a full allowance again.
func TestReview14_LoginFloodKeepsCredentialBucket(t *testing.T) {
	clk := clocktest.New(t0)
	const bound = 10
	creds := NewLocal(LocalOptions{MaxEntries: bound, Now: clk.Now})
	byIP := NewLocal(LocalOptions{MaxEntries: bound, Now: clk.Now})
	byEmail := NewLocal(LocalOptions{MaxEntries: bound, Now: clk.Now})
	lim := NewPartitioned(creds,
		Partition{Prefix: "login:email:", Limiter: byEmail},
		Partition{Prefix: "login:", Limiter: byIP})
	keyLimit := Limit{Requests: 3, Per: time.Hour}
	for range 2 {
		if !mustAllow(t, lim, "key:k1", keyLimit).Allowed {
			t.Fatal("credential refused within its limit")
		}
	}
	login := Limit{Requests: 10, Per: time.Minute}
	for i := range 100 * bound {
		mustAllow(t, lim, fmt.Sprintf("login:ip:2001:db8:%x::/64", i), login)
		mustAllow(t, lim, fmt.Sprintf("login:email:%064x", i), login)
	}
	if got := creds.Len(); got != 1 {
		t.Fatalf("credential store holds %d buckets, want 1 (login buckets went elsewhere)", got)
	}
	if byIP.Len() != bound || byEmail.Len() != bound {
		t.Fatalf("login stores hold %d and %d buckets, want %d each", byIP.Len(), byEmail.Len(), bound)
	}
	if r := mustAllow(t, lim, "key:k1", keyLimit); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("third request: allowed %v remaining %d, want allowed with 0 remaining", r.Allowed, r.Remaining)
	}
	if r := mustAllow(t, lim, "key:k1", keyLimit); r.Allowed {
		t.Fatal("fourth request allowed: the flood reset the credential's limit")
	}
}

// TestLocalEvictsRefilledBucketFirst: when full, Local forgets a bucket that has refilled
// (nothing is lost) before the least recently used one that still counts requests.
func TestLocalEvictsRefilledBucketFirst(t *testing.T) {
	clk := clocktest.New(t0)
	lc := NewLocal(LocalOptions{MaxEntries: 3, Now: clk.Now})
	slow := Limit{Requests: 1, Per: time.Hour}
	fast := Limit{Requests: 1, Per: time.Minute}
	mustAllow(t, lc, "a", slow) // used up for an hour; the least recently used
	mustAllow(t, lc, "b", fast)
	clk.Advance(2 * time.Minute) // b is full again
	mustAllow(t, lc, "c", slow)
	mustAllow(t, lc, "d", slow) // evicts b, not a
	if r := mustAllow(t, lc, "a", slow); r.Allowed {
		t.Fatal("a was evicted (and its limit reset) although b had refilled")
	}
}
