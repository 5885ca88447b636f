//go:build cluster

package gateway_test

// Measurements for docs/scaling.md: Redis commands per request on each auth path, and
// Redis memory per API key. They print numbers; they assert only that the measurement
// saw the work it measures.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// redisCalls sums INFO commandstats calls, leaving out the background commands that do
// not depend on requests (health pings, invalidation heartbeats, INFO itself).
func redisCalls(t *testing.T, g func() map[string]int64) int64 {
	var n int64
	for cmd, c := range g() {
		switch cmd {
		case "ping", "publish", "info", "subscribe", "psubscribe", "unsubscribe", "client|setinfo", "client|setname", "hello", "pubsub|numsub", "command|docs", "cluster|slots", "cluster|nodes":
			continue
		}
		n += c
	}
	return n
}

func TestSizingRedisOpsAndMemory(t *testing.T) {
	for _, mode := range []string{"local", "redis"} {
		t.Run("rate_limits.mode="+mode, func(t *testing.T) {
			o := issuerOpts(t.TempDir(), map[string]string{"RL_MODE": mode, "RL_MGMT": "1000000", "RL_MGMT_IP": "1000000"})
			rs := redistest.Start(t)
			g := serveLive(t, rs, o)
			waitForUser(t, rs, adminEmail)
			rc := rs.Client(t)
			stats := func() map[string]int64 {
				info, err := rc.Info(context.Background(), "commandstats").Result()
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]int64{}
				for line := range strings.Lines(info) {
					name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
					if !ok {
						continue
					}
					v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest+",", ',')], 10, 64)
					out[strings.TrimPrefix(name, "cmdstat_")] = v
				}
				return out
			}
			settle := func() { time.Sleep(1500 * time.Millisecond) } // one activity flush
			measure := func(what string, n int, do func(i int)) {
				settle()
				before := redisCalls(t, stats)
				for i := range n {
					do(i)
				}
				settle()
				d := redisCalls(t, stats) - before
				t.Logf("%s: %.2f Redis commands per request (%d over %d, activity and last-use writes included)", what, float64(d)/float64(n), d, n)
				fmt.Printf("sizing mode=%s %s: %.2f commands/request\n", mode, what, float64(d)/float64(n))
			}
			k := g.createKey(g.adminKey, map[string]any{"name": "hot", "scopes": []string{"reports:read"}})
			wantStatus(t, "warm", g.report(k.Secret), http.StatusOK)
			measure("API key, cached", 500, func(int) { g.report(k.Secret) })
			var fresh []string
			for i := range 100 {
				fresh = append(fresh, g.createKey(g.adminKey, map[string]any{"name": fmt.Sprintf("cold-%d", i), "scopes": []string{"reports:read"}}).Secret)
			}
			measure("API key, first use (not cached)", 100, func(i int) { g.report(fresh[i]) })
			la := g.loginAs(adminEmail, adminPass, "")
			g.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access))
			measure("JWT (built-in issuer), cached", 500, func(int) { g.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)) })
			measure("login", 5, func(int) { g.loginAs(adminEmail, adminPass, "") })

			if mode != "local" {
				return
			}
			mem := func() int64 {
				info, err := rc.Info(context.Background(), "memory").Result()
				if err != nil {
					t.Fatal(err)
				}
				for line := range strings.Lines(info) {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n
					}
				}
				return 0
			}
			settle()
			before := mem()
			const keys = 500
			for i := range keys {
				g.createKey(g.adminKey, map[string]any{"name": fmt.Sprintf("sized key number %d", i), "scopes": []string{"reports:read", "reports:generate"}})
			}
			settle()
			per := (mem() - before) / keys
			t.Logf("Redis memory per API key (record, indexes, audit record): %d bytes", per)
			fmt.Printf("sizing memory per API key: %d bytes\n", per)
			if per <= 0 {
				t.Errorf("memory per key %d: the measurement saw nothing", per)
			}
		})
	}
}
