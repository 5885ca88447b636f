package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestReportRefs: a row with a ref is compared with that row when it ran, and not at all
// when it was left out of the run.
func TestReportRefs(t *testing.T) {
	o := options{rounds: 1, duration: 5 * time.Second}
	rr := func(rps, cpu float64) []roundResult {
		return []roundResult{{Round: 1, Requests: int64(rps * 5), RPS: rps, CPUPerReq: cpu}}
	}
	targets := []target{
		{scenario: scenario{name: baseline}},
		{scenario: scenario{name: "authgate-apikey"}},
		{scenario: scenario{name: "authgate-jwt-hs256", ref: "authgate-apikey"}},
		{scenario: scenario{name: "orphan", ref: "not-run"}},
	}
	rep := newReport(o, "test", targets, [][]roundResult{rr(10000, 100), rr(12000, 60), rr(11400, 63), rr(1, 1)})

	jwtRow, orphan := rep.Rows[2], rep.Rows[3]
	if jwtRow.Ref != "authgate-apikey" || jwtRow.ThroughputVsRef != 0.95 || jwtRow.CPUVsRef != 1.05 {
		t.Errorf("jwt row: ref %q, throughput %v, CPU %v; want authgate-apikey, 0.95, 1.05",
			jwtRow.Ref, jwtRow.ThroughputVsRef, jwtRow.CPUVsRef)
	}
	if orphan.Ref != "" || orphan.ThroughputVsRef != 0 || orphan.CPUVsRef != 0 {
		t.Errorf("row whose ref did not run: %+v, want no comparison", orphan)
	}
	if rep.Rows[1].Ref != "" || rep.Rows[1].ThroughputVsRef != 0 {
		t.Errorf("row without ref: %+v, want no comparison", rep.Rows[1])
	}

	var out bytes.Buffer
	rep.print(&out)
	line := "authgate-jwt-hs256  authgate-apikey            0.950x       1.050x"
	if !strings.Contains(out.String(), line) {
		t.Errorf("printed report lacks %q:\n%s", line, out.String())
	}
	if strings.Contains(out.String(), "not-run") {
		t.Errorf("printed report compares with a row that did not run:\n%s", out.String())
	}
}

// TestReportRedis: a redis row reports the redis-server's medians beside the proxy's, the
// two together against the baseline's CPU, and per round; other rows have no redis part.
func TestReportRedis(t *testing.T) {
	o := options{rounds: 3, duration: 5 * time.Second}
	rr := func(rps, cpu, redisCPU, cmds float64) roundResult {
		return roundResult{Round: 1, Requests: int64(rps * 5), RPS: rps, CPUPerReq: cpu,
			Redis: &redisRound{CPU: time.Second, CPUPerReq: redisCPU, Commands: int64(4 * cmds * rps * 5), CommandsPerReq: 4 * cmds,
				Scripts: int64(cmds * rps * 5), ScriptsPerReq: cmds}}
	}
	plain := func(rps, cpu float64) roundResult { return roundResult{Round: 1, RPS: rps, CPUPerReq: cpu} }
	targets := []target{
		{scenario: scenario{name: baseline}},
		{scenario: scenario{name: "authgate-apikey"}},
		{scenario: scenario{name: "authgate-apikey-redis", redis: true}, redis: &redisServer{}},
	}
	rep := newReport(o, "test", targets, [][]roundResult{
		{plain(10000, 100), plain(9000, 110), plain(11000, 90)},
		{plain(12000, 60), plain(12000, 60), plain(12000, 60)},
		{rr(8000, 80, 30, 1.01), rr(7000, 90, 40, 1.02), rr(9000, 70, 20, 1.00)},
	})
	r := rep.Rows[2]
	if r.Redis == nil {
		t.Fatal("redis row without its redis-server figures")
	}
	want := redisRow{CPUUsPerRq: 30, ScriptsPerReq: 1.01, CommandsPerReq: 4.04, WithProxyUsPerRq: 110, WithProxyVsBare: 1.1}
	if *r.Redis != want {
		t.Errorf("redis figures %+v, want %+v", *r.Redis, want)
	}
	if rep.Rows[1].Redis != nil || rep.Rows[0].Redis != nil {
		t.Error("rows without redis have redis figures")
	}
	if pr := r.PerRound[0]; pr.RedisCPUSeconds != 1 || pr.RedisCPUUsPerRq != 30 || pr.RedisScripts != 40400 || pr.RedisCommands != 161600 {
		t.Errorf("round 1: %+v, want 1 s, 30 µs/req, 40400 scripts, 161600 commands of redis-server", pr)
	}

	var out bytes.Buffer
	rep.print(&out)
	for _, line := range []string{
		"redis-server, measured as its own process",
		"authgate-apikey-redis              30.0         1.01      4.04                 110.0 ( 1.10x)",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("printed report lacks %q:\n%s", line, out.String())
		}
	}
}

// TestReportCache: a JWT row sums its rounds' cache lookups into a hit ratio, an -uncached
// row is compared with its cached twin, and both are printed.
func TestReportCache(t *testing.T) {
	o := options{rounds: 2, duration: 5 * time.Second}
	rr := func(rps, cpu float64, hits, misses int64) roundResult {
		return roundResult{Round: 1, RPS: rps, CPUPerReq: cpu, Cache: &cacheLookupCounts{Hits: hits, Misses: misses}}
	}
	pool := &tokenPool{tokens: make([]string, 200000)}
	targets := []target{
		{scenario: scenario{name: baseline}},
		{scenario: scenario{name: "authgate-jwt-eddsa", jwtAlg: algEdDSA}},
		{scenario: scenario{name: "authgate-jwt-eddsa-uncached", jwtAlg: algEdDSA, distinctTokens: true, ref: "authgate-jwt-eddsa"}, tokens: pool},
	}
	rep := newReport(o, "test", targets, [][]roundResult{
		{{RPS: 20000, CPUPerReq: 50}, {RPS: 20000, CPUPerReq: 50}},
		{rr(16000, 60, 80000, 0), rr(16000, 60, 79999, 1)},
		{rr(8000, 120, 1000, 39000), rr(8000, 120, 0, 40000)},
	})
	if rep.Rows[0].Cache != nil {
		t.Errorf("bare row has cache figures %+v", rep.Rows[0].Cache)
	}
	cached, uncached := rep.Rows[1], rep.Rows[2]
	if want := (cacheRow{Hits: 159999, Misses: 1, HitRatio: 159999.0 / 160000}); cached.Cache == nil || *cached.Cache != want {
		t.Errorf("cached row: %+v, want %+v", cached.Cache, want)
	}
	if want := (cacheRow{Hits: 1000, Misses: 79000, HitRatio: 1000.0 / 80000, Tokens: 200000}); uncached.Cache == nil || *uncached.Cache != want {
		t.Errorf("uncached row: %+v, want %+v", uncached.Cache, want)
	}
	if uncached.ThroughputVsRef != 0.5 || uncached.CPUVsRef != 2 {
		t.Errorf("uncached vs cached: throughput %v, CPU %v; want 0.5, 2", uncached.ThroughputVsRef, uncached.CPUVsRef)
	}
	if pr := uncached.PerRound[0]; pr.CacheHits != 1000 || pr.CacheMisses != 39000 {
		t.Errorf("round 1: %+v, want 1000 hits, 39000 misses", pr)
	}

	var out bytes.Buffer
	rep.print(&out)
	for _, line := range []string{
		"authgate-jwt-eddsa-uncached  authgate-jwt-eddsa         0.500x       2.000x",
		"authgate-jwt-eddsa               159999           1     100.0%                1",
		"authgate-jwt-eddsa-uncached        1000       79000       1.2%           200000",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("printed report lacks %q:\n%s", line, out.String())
		}
	}
}
