package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// serveGateway runs s's background work (bootstrap key registration, invalidations)
// until the test ends, as `authgate serve` does.
func serveGateway(t *testing.T, s *gateway.Server) {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s")
		}
	})
}

// TestRedisRow builds the redis row's gateway in process from the row's own config,
// against a real redis-server, and checks that the row's request is served 200 under the
// bench limit and is counted in Redis (mode: redis), not in process.
func TestRedisRow(t *testing.T) {
	srv := redistest.Start(t)
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sc := scenarioNamed(t, "authgate-apikey-redis")
	if !sc.redis {
		t.Fatal("authgate-apikey-redis: redis not set, the run would start no redis-server for it")
	}
	sc.env = append(slices.Clone(sc.env), envRedisAddr+"="+srv.Addr())
	s, up, reg := benchGateway(t, sc, keys)
	serveGateway(t, s)

	send := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, sc.path, nil)
		for k, vs := range sc.header {
			r.Header[k] = vs
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	// With a Redis store the bootstrap key is registered by Serve, shortly after start:
	// the benchmark's probe waits for it the same way.
	deadline := time.Now().Add(10 * time.Second)
	rec := send()
	for rec.Code != sc.want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		rec = send()
	}
	for i := range 3 {
		if i > 0 {
			rec = send()
		}
		h := rec.Header()
		if rec.Code != sc.want || !bytes.Equal(rec.Body.Bytes(), upstreamBody) {
			t.Fatalf("request %d: %d %q, want %d and the upstream's body", i+1, rec.Code, rec.Body.Bytes(), sc.want)
		}
		if h.Get("X-RateLimit-Limit") != "1000000000" || h.Get("RateLimit-Policy") != `"api_key";q=1000000000;w=1000` {
			t.Errorf("request %d: X-RateLimit-Limit %q, RateLimit-Policy %q; want 1000000000 and the api_key policy",
				i+1, h.Get("X-RateLimit-Limit"), h.Get("RateLimit-Policy"))
		}
	}
	if m, subjects := up.seen(); len(m) != 3 || m[0] != "api_key" || subjects[0] == "" {
		t.Errorf("upstream saw X-Auth-Method %q, X-Auth-Subject %q; want api_key 3 times", m, subjects)
	}

	// Counted in Redis: redis_rate keeps the key's state at rate:<prefix>rl:<bucket>.
	rl, err := srv.Client(t).Keys(t.Context(), "rate:authgate:rl:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(rl) != 1 || !strings.HasPrefix(rl[0], "rate:authgate:rl:key:") {
		t.Errorf("rate limit state in Redis: %q, want one key rate:authgate:rl:key:<id>", rl)
	}
	if v := gaugeValue(t, reg, "authgate_rate_limit_fallback"); v != 0 {
		t.Errorf("authgate_rate_limit_fallback = %v, want 0 (limits in Redis, not the local fallback)", v)
	}
}

// gaugeValue is the value of the unlabelled gauge name in reg; it fails the test when reg
// has no such gauge.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestStartRedis starts the benchmark's own redis-server, checks what measure relies on
// (INFO counts every command but itself, so a round's own INFO is one to subtract), and
// that stopping the children stops it.
func TestStartRedis(t *testing.T) {
	bin, err := findRedisServer()
	if errors.Is(err, errNoRedisServer) {
		if os.Getenv("AUTHGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("%v (AUTHGATE_REQUIRE_REDIS=1)", err)
		}
		t.Skipf("!!! SKIPPING: %v", err)
	}
	ps := &procs{}
	t.Cleanup(func() { ps.stopAll(5 * time.Second) })
	rs, err := startRedis(t.Context(), ps, t.TempDir(), bin, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	if got := rs.env(); len(got) != 1 || got[0] != envRedisAddr+"="+rs.addr || !strings.HasPrefix(rs.addr, "127.0.0.1:") {
		t.Errorf("env = %q, want %s=127.0.0.1:<port>", got, envRedisAddr)
	}

	s0, err := rs.stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s1, err := rs.stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s1.commands-s0.commands != 1 || s1.scripts != 0 {
		t.Errorf("two INFOs in a row: %+v then %+v; want 1 command more (the first INFO), no script", s0, s1)
	}
	// A script like the limiter's: one call, and its commands counted as commands too.
	const script = `redis.call("TIME"); redis.call("GET", KEYS[1]); return redis.call("SET", KEYS[1], "1")`
	sha, err := rs.client.ScriptLoad(t.Context(), script).Result()
	if err != nil {
		t.Fatal(err)
	}
	s1, err = rs.stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := rs.client.EvalSha(t.Context(), sha, []string{"k"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := rs.stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := (redisStats{commands: s2.commands - s1.commands - 1, scripts: s2.scripts - s1.scripts}); got != (redisStats{commands: 8, scripts: 2}) {
		t.Errorf("2 EVALSHA of TIME, GET, SET: %+v, want 8 commands and 2 scripts", got)
	}
	if cpu, err := procCPU(rs.proc.pid()); err != nil || cpu < 0 {
		t.Errorf("procCPU(redis-server) = %v, %v", cpu, err)
	}
	// No persistence.
	save, err := rs.client.ConfigGet(t.Context(), "save").Result()
	if err != nil || save["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v; want \"\"", save, err)
	}

	ps.stopAll(5 * time.Second)
	if dead, _ := rs.proc.exited(); !dead {
		t.Error("redis-server still running after stopAll")
	}
}

// TestStartRedisFailure: a redis-server that exits at start is reported at once, with its
// output, not after the readiness timeout.
func TestStartRedisFailure(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-redis-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR' >&2\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ps := &procs{}
	t.Cleanup(func() { ps.stopAll(5 * time.Second) })
	start := time.Now()
	_, err := startRedis(t.Context(), ps, dir, bin, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "redis-server exited before it was ready") || !strings.Contains(err.Error(), "FATAL CONFIG FILE ERROR") {
		t.Errorf("err = %v, want redis-server's exit with its output", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s, want the exit noticed well before the 30s timeout", d)
	}
}

func TestParseRedisStats(t *testing.T) {
	const info = "# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:12345\r\ninstantaneous_ops_per_sec:0\r\n" +
		"\r\n# Commandstats\r\ncmdstat_get:calls=7,usec=9,usec_per_call=1.29,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha:calls=100,usec=900,usec_per_call=9.00,rejected_calls=0,failed_calls=1\r\n" +
		"cmdstat_eval:calls=1,usec=20,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha_ro:calls=2,usec=20,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
	tests := []struct {
		name    string
		info    string
		want    redisStats
		wantErr bool
	}{
		{"INFO all reply", info, redisStats{commands: 12345, scripts: 103}, false},
		{"no script run yet", "total_commands_processed:4\r\ncmdstat_info:calls=4,usec=1\r\n", redisStats{commands: 4}, false},
		{"field missing", "# Stats\r\ntotal_connections_received:3\r\n", redisStats{}, true},
		{"not a number", "total_commands_processed:lots\r\n", redisStats{}, true},
		{"prefix of another field", "total_commands_processed_x:1\r\n", redisStats{}, true},
		{"script calls not a number", "total_commands_processed:1\r\ncmdstat_evalsha:calls=x\r\n", redisStats{commands: 1}, true},
		{"script calls missing", "total_commands_processed:1\r\ncmdstat_eval:usec=3\r\n", redisStats{commands: 1}, true},
		{"line longer than the scanner's buffer", "total_commands_processed:1\r\n" + strings.Repeat("x", 70_000), redisStats{commands: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRedisStats(tt.info)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRedisRows(t *testing.T) {
	if got := redisRows([]string{"bare", "authgate-apikey", "authgate-apikey-redis"}); !slices.Equal(got, []string{"authgate-apikey-redis"}) {
		t.Errorf("redisRows = %q, want [authgate-apikey-redis]", got)
	}
	if got := redisRows([]string{"bare", "authgate-apikey"}); got != nil {
		t.Errorf("redisRows without the redis row = %q, want none", got)
	}
}

// TestRedisForMissing: without redis-server the redis rows are skipped with a loud
// message and the others still run; without redis rows nothing is looked for.
func TestRedisForMissing(t *testing.T) {
	missing := func() (string, error) { return "", fmt.Errorf("%w: not on PATH", errNoRedisServer) }
	var log []string
	logf := func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) }
	names := []string{"bare", "authgate-apikey", "authgate-apikey-redis"}
	rs, got, err := redisFor(t.Context(), &procs{}, t.TempDir(), names, missing, logf)
	if err != nil || rs != nil || !slices.Equal(got, []string{"bare", "authgate-apikey"}) {
		t.Errorf("got %v, %v, %v; want no server, the rows without Redis, no error", rs, got, err)
	}
	if len(log) != 1 || !strings.HasPrefix(log[0], "!!! SKIPPING authgate-apikey-redis: redis-server not found") {
		t.Errorf("log = %q, want one loud SKIPPING line", log)
	}
	if len(names) != 3 {
		t.Errorf("caller's names changed to %q", names)
	}

	called := false
	find := func() (string, error) { called = true; return "", errNoRedisServer }
	rs, got, err = redisFor(t.Context(), &procs{}, t.TempDir(), []string{"bare", "authgate-apikey"}, find, logf)
	if err != nil || rs != nil || len(got) != 2 || called {
		t.Errorf("no redis row: %v, %v, %v, find called %v; want nothing started or looked for", rs, got, err, called)
	}

	broken := errors.New("stat: permission denied")
	if _, _, err := redisFor(t.Context(), &procs{}, t.TempDir(), names, func() (string, error) { return "", broken }, logf); !errors.Is(err, broken) {
		t.Errorf("other lookup error: err = %v, want %v", err, broken)
	}
}

// FuzzParseRedisStats: any INFO text parses without panic, and a parsed
// total_commands_processed is the value of the field's last line.
func FuzzParseRedisStats(f *testing.F) {
	f.Add("total_commands_processed:12\r\ncmdstat_evalsha:calls=3,usec=1\r\n")
	f.Add("cmdstat_eval:calls=,usec=1\r\ntotal_commands_processed:-1")
	f.Add("")
	f.Fuzz(func(t *testing.T, info string) {
		st, err := parseRedisStats(info)
		if err != nil {
			return
		}
		var want int64
		found := false
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("parsed %+v from %q, whose field %q is not a number", st, info, v)
				}
				want, found = n, true
			}
		}
		if !found || st.commands != want {
			t.Errorf("commands = %d from %q, want %d (found %v)", st.commands, info, want, found)
		}
	})
}
