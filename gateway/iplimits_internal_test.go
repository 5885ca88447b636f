package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/ratelimit"
)

// Per-address route buckets (rate_limits.per_ip, public routes' rate_limit) can be made by
// anyone, one per IPv6 /64: a flood of them never evicts a credential's bucket, which
// would give the credential its full allowance again (issue 9, item 14).
func TestPerIPBucketsNeverEvictCredentialBuckets(t *testing.T) {
	const bound = 16
	lim := localLimiter(bound)
	ctx := context.Background()
	key := ratelimit.Limit{Requests: 3, Per: time.Hour}
	allow := func(k string, l ratelimit.Limit) bool {
		t.Helper()
		res, err := lim.Allow(ctx, k, l)
		if err != nil {
			t.Fatalf("Allow(%q): %v", k, err)
		}
		return res.Allowed
	}
	for range 2 {
		if !allow("key:k1", key) {
			t.Fatal("credential refused within its limit")
		}
	}
	perIP := ratelimit.Limit{Requests: 1, Per: time.Hour} // used up at once: nothing to evict first
	for i := range 50 * bound {
		ck := ratelimit.ClientKey(netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", i)))
		allow(ipAllBucketPrefix+ck, perIP)
		allow(ipRouteBucketPrefix+"health|"+ck, perIP)
	}
	if !allow("key:k1", key) {
		t.Fatal("third request refused")
	}
	if allow("key:k1", key) {
		t.Fatal("fourth request allowed: the per-address flood reset the credential's limit")
	}
}
