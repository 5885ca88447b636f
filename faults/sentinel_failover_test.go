//go:build faults

package faults

// Three built gateway processes on a real Sentinel set (primary, replica, three
// sentinels) and on a real Cluster (3+3): a primary is killed under load while keys are
// created and revoked continuously through the failover. The in-process topology suites (make test-cluster)
// run the same scenario on Cluster and Sentinel with more measurements; this one proves it
// with the binary as deployed.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// failoverModes are the on_store_error modes each process failover runs in: the default
// (serve_cached, where a replica that cannot read Redis serves what it verified) and
// fail_closed. The revocation promise is the same in both.
var failoverModes = []string{"serve_cached", "fail_closed"}

// TestSentinelFailoverProcesses: the primary killed.
func TestSentinelFailoverProcesses(t *testing.T) {
	for _, mode := range failoverModes {
		t.Run(mode, func(t *testing.T) {
			s := redistest.StartSentinel(t)
			failoverProcesses(t, "sentinel/"+mode, mode, fmt.Sprintf(`addrs: ["%s"]
    master_name: %q`, strings.Join(s.Addrs(), `", "`), redistest.SentinelMaster), func() (time.Time, time.Time) {
				start := time.Now()
				killed, primary := s.KillPrimary(t)
				promoted := time.Now()
				s.Rejoin(t, killed, primary)
				return start, promoted
			})
		})
	}
}

// TestClusterFailoverProcesses: the primary of the API keys' slot killed, on a 3+3 Cluster.
func TestClusterFailoverProcesses(t *testing.T) {
	for _, mode := range failoverModes {
		t.Run(mode, func(t *testing.T) {
			c := redistest.StartCluster(t, 3, 1)
			failoverProcesses(t, "cluster/"+mode, mode, fmt.Sprintf(`addrs: ["%s"]`, strings.Join(c.Addrs(), `", "`)), func() (time.Time, time.Time) {
				start := time.Now()
				killed, _ := c.KillPrimaryFor(t, "{apikeys}:ids")
				promoted := time.Now()
				c.Rejoin(t, killed)
				return start, promoted
			})
		})
	}
}

// failoverProcesses runs three gateway processes on the topology redisYAML connects to,
// under load, through failover (which returns once a new primary serves), and checks:
// no revoked key is let through once its revocation was answered, no acknowledged
// creation or revocation is lost, good keys see 5xx only around the switch.
func failoverProcesses(t *testing.T, name, mode, redisYAML string, failover func() (switchStart, promoted time.Time)) {
	up := newUpstream(t)
	dir := t.TempDir()
	adminKey := newKey(t)
	cfg := gatewayConfig{OnStoreError: mode, RateMode: "redis", Upstream: up.hostPort(),
		SigningKey: filepath.Join(dir, "signing-key.pem"), AdminKey: adminKey, RedisYAML: redisYAML}
	path := writeConfig(t, dir, "gateway.yaml", cfg)
	var gs []*gatewayProc
	for _, name := range []string{"A", "B", "C"} {
		gs = append(gs, startGateway(t, name, path))
	}
	admin := "Token " + adminKey
	api := func(g *gatewayProc) string { return g.base + "/api/auth/api-keys/" }
	type key struct{ ID, Key string }
	var good []key
	for i := range 3 {
		var k key
		mustCall(t, http.StatusCreated, http.MethodPost, api(gs[0]), admin,
			map[string]any{"name": fmt.Sprintf("good-%d", i), "scopes": []string{"load:read"}}, &k)
		good = append(good, k)
	}

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		goodBad  []time.Time // 5xx or no answer for a good key
		goodSent atomic.Int64
		created  []key
		revoked  = map[string]time.Time{} // id -> acknowledged
		revKeys  []key
		leaks    []string
	)
	for w := range 3 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				code, _ := call(http.MethodGet, gs[i%3].base+"/keyed/", "Token "+good[i%3].Key, nil)
				goodSent.Add(1)
				if code == 0 || code >= 500 {
					mu.Lock()
					goodBad = append(goodBad, time.Now())
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	// Create, use everywhere (cached), revoke on a random replica until acknowledged.
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			g := gs[rand.IntN(3)]
			code, body := call(http.MethodPost, api(g), admin, map[string]any{"name": fmt.Sprintf("churn-%d", i), "scopes": []string{"load:read"}})
			var k key
			if code != http.StatusCreated || json.Unmarshal([]byte(body), &k) != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			mu.Lock()
			created = append(created, k)
			mu.Unlock()
			for _, h := range gs {
				call(http.MethodGet, h.base+"/keyed/", "Token "+k.Key, nil)
			}
			for !stop.Load() {
				r := gs[rand.IntN(3)]
				if code, _ := call(http.MethodDelete, api(r)+k.ID+"/", admin, nil); code == http.StatusOK {
					mu.Lock()
					revoked[k.ID] = time.Now()
					revKeys = append(revKeys, k)
					mu.Unlock()
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	// Revoked keys on every replica: never a 200 for a request sent after the answer.
	for w := range 2 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				mu.Lock()
				if len(revKeys) == 0 {
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					continue
				}
				k := revKeys[rand.IntN(len(revKeys))]
				acked := revoked[k.ID]
				mu.Unlock()
				sent := time.Now()
				if code, _ := call(http.MethodGet, gs[i%3].base+"/keyed/", "Token "+k.Key, nil); code == http.StatusOK {
					mu.Lock()
					leaks = append(leaks, fmt.Sprintf("%s accepted by %s, sent %s after its revocation was answered", k.ID, gs[i%3].name, sent.Sub(acked)))
					mu.Unlock()
				}
			}
		})
	}

	time.Sleep(2 * time.Second)
	switchStart, promoted := failover()
	time.Sleep(7 * time.Second)
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, l := range leaks {
		t.Errorf("revoked key let through: %s", l)
	}
	var before, during, after, late int
	for _, at := range goodBad {
		switch {
		case at.Before(switchStart):
			before++
		case at.Before(promoted):
			during++
		case at.Before(promoted.Add(5 * time.Second)):
			after++
		default:
			late++
		}
	}
	t.Logf("%s, 3 processes: failover took %s; good-key requests %d, 5xx before %d, while no primary %d, within 5s after %d, later %d; %d keys created, %d revocations acknowledged, %d revoked keys let through",
		name, promoted.Sub(switchStart), goodSent.Load(), before, during, after, late, len(created), len(revoked), len(leaks))
	if before != 0 || late != 0 {
		t.Errorf("good keys saw 5xx outside the failover: %d before it, %d later than 5s after the new primary", before, late)
	}
	if len(revoked) < 10 {
		t.Errorf("only %d revocations acknowledged: the churn did not run", len(revoked))
	}
	// Nothing acknowledged was lost.
	for i, k := range created {
		var v struct{ Status string }
		mustCall(t, http.StatusOK, http.MethodGet, api(gs[i%3])+k.ID+"/", admin, nil, &v)
		if _, ok := revoked[k.ID]; ok && v.Status != "revoked" {
			t.Errorf("acknowledged revocation of %s lost: status %s", k.ID, v.Status)
		}
	}
	for _, g := range gs {
		if !g.alive() {
			t.Errorf("gateway %s died: %v\n%s", g.name, g.err, tail(g.stdout.String(), 20))
		}
		if p := g.panicked(); p != "" {
			t.Errorf("gateway %s panicked: %s", g.name, p)
		}
	}
}
