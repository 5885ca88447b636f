package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// roundResult is one target's figures in one round.
type roundResult struct {
	Round     int
	Requests  int64
	RPS       float64
	P50, P99  time.Duration
	CPU       time.Duration // the proxy process's user + system time during the round
	CPUPerReq float64       // CPU-µs per completed request
	Errors    int64
	NotWanted int64
	Redis     *redisRound // the redis-server's share, for a redis row; else nil
	// Cache is the gateway's credential cache lookups during the round, for a JWT row;
	// else nil.
	Cache *cacheLookupCounts
}

// cacheNote is the round's cache hit ratio for the progress line, else "".
func (r roundResult) cacheNote() string {
	if r.Cache == nil {
		return ""
	}
	return fmt.Sprintf("  cache hits %.1f%%", 100*r.Cache.hitRatio())
}

// redisRound is what the run's redis-server did during one round of a redis row.
type redisRound struct {
	CPU            time.Duration // its user + system time
	CPUPerReq      float64       // CPU-µs per completed request
	Commands       int64         // commands it ran, those inside scripts included (the benchmark's INFO excluded)
	CommandsPerReq float64
	Scripts        int64 // EVAL/EVALSHA calls: the limiter's round trips
	ScriptsPerReq  float64
}

// redisNote is the redis-server's share of a round for the progress line, else "".
func (r roundResult) redisNote() string {
	if r.Redis == nil {
		return ""
	}
	return fmt.Sprintf("  + redis-server %.1f CPU-µs/req, %.2f scripts/req, %.2f cmds/req", r.Redis.CPUPerReq, r.Redis.ScriptsPerReq, r.Redis.CommandsPerReq)
}

// problems is a note for a round that had errors or unexpected statuses, else "".
func (r roundResult) problems(want int) string {
	var ps []string
	if r.Errors > 0 {
		ps = append(ps, fmt.Sprintf("%d errors", r.Errors))
	}
	if r.NotWanted > 0 {
		ps = append(ps, fmt.Sprintf("%d responses not %d", r.NotWanted, want))
	}
	if len(ps) == 0 {
		return ""
	}
	return "  WARNING: " + strings.Join(ps, ", ")
}

// report is the run's outcome: printed as a table and written as JSON.
type report struct {
	Time        time.Time `json:"time"`
	Tool        string    `json:"tool"`
	Cores       int       `json:"cores"`
	GoVersion   string    `json:"go_version"`
	OSArch      string    `json:"os_arch"`
	Rounds      int       `json:"rounds"`
	DurationS   float64   `json:"round_duration_s"`
	WarmupS     float64   `json:"warmup_s"`
	Connections int       `json:"connections"`
	Rate        float64   `json:"rate_per_s"` // 0: max rate
	Baseline    string    `json:"baseline"`
	Rows        []row     `json:"rows"`
}

// row is one scenario summarised over its rounds: each figure is the median of the rounds.
type row struct {
	Name       string  `json:"name"`
	About      string  `json:"about"`
	Rejection  bool    `json:"rejection,omitempty"`
	Path       string  `json:"path"`
	WantStatus int     `json:"want_status"`
	ReqPerS    float64 `json:"req_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	CPUUsPerRq float64 `json:"cpu_us_per_req"`
	// Compared with the baseline row of the same run.
	ThroughputVsBare float64 `json:"throughput_vs_bare"`
	CPUVsBare        float64 `json:"cpu_per_req_vs_bare"`
	AddedP50Ms       float64 `json:"added_p50_ms"`
	AddedP99Ms       float64 `json:"added_p99_ms"`
	// Compared with the row's ref (e.g. the JWT rows with authgate-apikey), when it ran.
	Ref             string  `json:"ref,omitempty"`
	ThroughputVsRef float64 `json:"throughput_vs_ref,omitempty"`
	CPUVsRef        float64 `json:"cpu_per_req_vs_ref,omitempty"`
	// For a redis row: the run's redis-server, measured as its own process (medians).
	Redis *redisRow `json:"redis_server,omitempty"`
	// For a JWT row: the gateway's credential cache lookups over all the measured rounds.
	Cache     *cacheRow `json:"credential_cache,omitempty"`
	Errors    int64     `json:"errors"`
	NotWanted int64     `json:"responses_not_wanted_status"`
	PerRound  []round   `json:"per_round"`
}

// redisRow is the redis-server's share of a redis row.
type redisRow struct {
	CPUUsPerRq float64 `json:"cpu_us_per_req"`
	// ScriptsPerReq counts EVAL/EVALSHA calls (the limiter's round trips); CommandsPerReq
	// every command, those the scripts run included.
	ScriptsPerReq  float64 `json:"scripts_per_req"`
	CommandsPerReq float64 `json:"commands_per_req"`
	// WithProxyUsPerRq is the proxy's and the redis-server's CPU per request together, and
	// WithProxyVsBare that over the baseline's.
	WithProxyUsPerRq float64 `json:"with_proxy_cpu_us_per_req"`
	WithProxyVsBare  float64 `json:"with_proxy_cpu_per_req_vs_bare"`
}

// cacheRow is what authgate_credential_cache_total counted during a row's rounds.
type cacheRow struct {
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	HitRatio float64 `json:"hit_ratio"`
	// Tokens is how many distinct tokens the row sent in turn (an -uncached row), else 0.
	Tokens int `json:"distinct_tokens,omitempty"`
}

type round struct {
	Round      int     `json:"round"`
	Requests   int64   `json:"requests"`
	ReqPerS    float64 `json:"req_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	CPUSeconds float64 `json:"cpu_s"`
	CPUUsPerRq float64 `json:"cpu_us_per_req"`
	Errors     int64   `json:"errors"`
	NotWanted  int64   `json:"responses_not_wanted_status"`
	// For a redis row: the redis-server's CPU and commands in this round.
	RedisCPUSeconds float64 `json:"redis_cpu_s,omitempty"`
	RedisCPUUsPerRq float64 `json:"redis_cpu_us_per_req,omitempty"`
	RedisCommands   int64   `json:"redis_commands,omitempty"`
	RedisScripts    int64   `json:"redis_scripts,omitempty"`
	// For a JWT row: the credential cache lookups in this round.
	CacheHits   int64 `json:"cache_hits,omitempty"`
	CacheMisses int64 `json:"cache_misses,omitempty"`
}

func newReport(o options, tool string, targets []target, results [][]roundResult) report {
	rep := report{
		Time: time.Now().UTC().Truncate(time.Second), Tool: tool, Cores: runtime.NumCPU(),
		GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH,
		Rounds: o.rounds, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
		Connections: o.connections, Rate: o.rate, Baseline: baseline,
	}
	for i, t := range targets {
		rs := results[i]
		r := row{
			Name: t.name, About: t.about, Rejection: t.rejection, Path: t.path, WantStatus: t.want, Ref: t.ref,
			ReqPerS:    median(rs, func(r roundResult) float64 { return r.RPS }),
			P50Ms:      median(rs, func(r roundResult) float64 { return ms(r.P50) }),
			P99Ms:      median(rs, func(r roundResult) float64 { return ms(r.P99) }),
			CPUUsPerRq: median(rs, func(r roundResult) float64 { return r.CPUPerReq }),
		}
		if t.redis != nil {
			r.Redis = &redisRow{
				CPUUsPerRq:       median(rs, func(r roundResult) float64 { return r.Redis.CPUPerReq }),
				ScriptsPerReq:    median(rs, func(r roundResult) float64 { return r.Redis.ScriptsPerReq }),
				CommandsPerReq:   median(rs, func(r roundResult) float64 { return r.Redis.CommandsPerReq }),
				WithProxyUsPerRq: median(rs, func(r roundResult) float64 { return r.CPUPerReq + r.Redis.CPUPerReq }),
			}
		}
		for _, x := range rs {
			if x.Cache != nil {
				if r.Cache == nil {
					r.Cache = &cacheRow{}
					if t.tokens != nil {
						r.Cache.Tokens = len(t.tokens.tokens)
					}
				}
				r.Cache.Hits += x.Cache.Hits
				r.Cache.Misses += x.Cache.Misses
			}
			r.Errors += x.Errors
			r.NotWanted += x.NotWanted
			pr := round{
				Round: x.Round, Requests: x.Requests, ReqPerS: x.RPS, P50Ms: ms(x.P50), P99Ms: ms(x.P99),
				CPUSeconds: x.CPU.Seconds(), CPUUsPerRq: x.CPUPerReq, Errors: x.Errors, NotWanted: x.NotWanted,
			}
			if x.Redis != nil {
				pr.RedisCPUSeconds, pr.RedisCPUUsPerRq = x.Redis.CPU.Seconds(), x.Redis.CPUPerReq
				pr.RedisCommands, pr.RedisScripts = x.Redis.Commands, x.Redis.Scripts
			}
			if x.Cache != nil {
				pr.CacheHits, pr.CacheMisses = x.Cache.Hits, x.Cache.Misses
			}
			r.PerRound = append(r.PerRound, pr)
		}
		if r.Cache != nil {
			r.Cache.HitRatio = cacheLookupCounts{Hits: r.Cache.Hits, Misses: r.Cache.Misses}.hitRatio()
		}
		rep.Rows = append(rep.Rows, r)
	}
	if i := slices.IndexFunc(rep.Rows, func(r row) bool { return r.Name == baseline }); i >= 0 {
		b := rep.Rows[i]
		for j := range rep.Rows {
			r := &rep.Rows[j]
			r.ThroughputVsBare = ratio(r.ReqPerS, b.ReqPerS)
			r.CPUVsBare = ratio(r.CPUUsPerRq, b.CPUUsPerRq)
			r.AddedP50Ms = r.P50Ms - b.P50Ms
			r.AddedP99Ms = r.P99Ms - b.P99Ms
			if r.Redis != nil {
				r.Redis.WithProxyVsBare = ratio(r.Redis.WithProxyUsPerRq, b.CPUUsPerRq)
			}
		}
	}
	for j := range rep.Rows {
		r := &rep.Rows[j]
		i := slices.IndexFunc(rep.Rows, func(x row) bool { return x.Name == r.Ref })
		if i < 0 {
			r.Ref = "" // not selected in this run: nothing to compare with
			continue
		}
		r.ThroughputVsRef = ratio(r.ReqPerS, rep.Rows[i].ReqPerS)
		r.CPUVsRef = ratio(r.CPUUsPerRq, rep.Rows[i].CPUUsPerRq)
	}
	return rep
}

// print writes the table, then each row's comparison with the baseline.
func (rep report) print(w io.Writer) {
	rate := "max rate (closed loop)"
	if rep.Rate > 0 {
		rate = fmt.Sprintf("fixed %.0f req/s", rep.Rate)
	}
	fmt.Fprintf(w, "\nauthgate bench: load tool %s; %d cores; %s %s\n", rep.Tool, rep.Cores, rep.GoVersion, rep.OSArch)
	fmt.Fprintf(w, "%d rounds x %gs per target, alternating, after %gs warm-up each; %d connections; %s\n",
		rep.Rounds, rep.DurationS, rep.WarmupS, rep.Connections, rate)
	fmt.Fprintf(w, "figures are medians over rounds; CPU is the proxy process alone (utime+stime from /proc)\n\n")

	label := func(r row) string {
		if r.Rejection {
			return r.Name + " *"
		}
		return r.Name
	}
	width := len("target")
	for _, r := range rep.Rows {
		width = max(width, len(label(r)))
	}
	fmt.Fprintf(w, "%-*s  %9s  %8s  %8s  %10s  %6s  %6s\n", width, "target", "req/s", "p50", "p99", "CPU-µs/req", "status", "errors")
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "%-*s  %9.0f  %6.2fms  %6.2fms  %10.1f  %6d  %6d\n",
			width, label(r), r.ReqPerS, r.P50Ms, r.P99Ms, r.CPUUsPerRq, r.WantStatus, r.Errors+r.NotWanted)
	}

	bi := slices.IndexFunc(rep.Rows, func(r row) bool { return r.Name == rep.Baseline })
	if bi >= 0 && len(rep.Rows) > 1 {
		b := rep.Rows[bi]
		fmt.Fprintf(w, "\nvs %s (same upstream, same run; %s: %.1f CPU-µs/req)\n", b.Name, b.Name, b.CPUUsPerRq)
		fmt.Fprintf(w, "%-*s  %17s  %19s  %9s  %9s\n", width, "target", "throughput/"+b.Name, "CPU-µs/req (x "+b.Name+")", "added p50", "added p99")
		for _, r := range rep.Rows {
			if r.Name == b.Name {
				continue
			}
			fmt.Fprintf(w, "%-*s  %16.2fx  %10.1f (%5.2fx)  %+7.2fms  %+7.2fms\n",
				width, label(r), r.ThroughputVsBare, r.CPUUsPerRq, r.CPUVsBare, r.AddedP50Ms, r.AddedP99Ms)
		}
	}

	rep.printRefs(w, width)
	rep.printCache(w, width)
	rep.printRedis(w, width)

	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "%s: %s\n", label(r), r.About)
		if r.Errors+r.NotWanted > 0 {
			fmt.Fprintf(w, "  WARNING: %d errors and %d responses other than %d; its figures are suspect\n", r.Errors, r.NotWanted, r.WantStatus)
		}
	}
	if rep.Rate == 0 {
		fmt.Fprintln(w, "latency at max rate includes queueing; for the added-latency target (docs/benchmarks.md) use a fixed, unsaturated rate: go run ./bench -rate 2000")
	}
}

// printRefs writes the comparison of each row that has a ref with that row.
func (rep report) printRefs(w io.Writer, width int) {
	header := false
	for _, r := range rep.Rows {
		if r.Ref == "" {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nvs own reference row (same run; target: the JWT rows within 5 %% of authgate-apikey;\n")
			fmt.Fprintf(w, "an -uncached row against its cached twin: the verified-token cache's effect)\n")
			fmt.Fprintf(w, "%-*s  %-20s  %11s  %11s\n", width, "target", "reference", "throughput", "CPU-µs/req")
			header = true
		}
		fmt.Fprintf(w, "%-*s  %-20s  %10.3fx  %10.3fx\n", width, r.Name, r.Ref, r.ThroughputVsRef, r.CPUVsRef)
	}
}

// printCache writes, for the JWT rows, what the gateway's credential cache did during
// their rounds, so that a cached row's hits and an -uncached row's misses are shown, not
// assumed.
func (rep report) printCache(w io.Writer, width int) {
	header := false
	for _, r := range rep.Rows {
		if r.Cache == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\ncredential cache during the rounds (authgate_credential_cache_total from the ops listener)\n")
			fmt.Fprintf(w, "%-*s  %10s  %10s  %9s  %15s\n", width, "target", "hits", "misses", "hit ratio", "distinct tokens")
			header = true
		}
		tokens := "1"
		if r.Cache.Tokens > 0 {
			tokens = fmt.Sprint(r.Cache.Tokens)
		}
		fmt.Fprintf(w, "%-*s  %10d  %10d  %8.1f%%  %15s\n", width, r.Name, r.Cache.Hits, r.Cache.Misses, 100*r.Cache.HitRatio, tokens)
	}
}

// printRedis writes, for the redis rows, what the run's redis-server spent on them: the
// table's CPU column is the proxy's alone, and a Redis limit is a round trip per request.
func (rep report) printRedis(w io.Writer, width int) {
	header := false
	bare := "bare"
	if bi := slices.IndexFunc(rep.Rows, func(r row) bool { return r.Name == rep.Baseline }); bi >= 0 {
		bare = rep.Rows[bi].Name
	}
	for _, r := range rep.Rows {
		if r.Redis == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nredis-server, measured as its own process (not in the CPU column above);\n")
			fmt.Fprintf(w, "scripts = EVAL/EVALSHA calls (the limiter's round trips), cmds = all commands incl. those inside scripts\n")
			fmt.Fprintf(w, "%-*s  %16s  %11s  %8s  %29s\n", width, "target", "redis CPU-µs/req", "scripts/req", "cmds/req", "authgate+redis CPU-µs/req (x "+bare+")")
			header = true
		}
		fmt.Fprintf(w, "%-*s  %16.1f  %11.2f  %8.2f  %20.1f (%5.2fx)\n",
			width, r.Name, r.Redis.CPUUsPerRq, r.Redis.ScriptsPerReq, r.Redis.CommandsPerReq, r.Redis.WithProxyUsPerRq, r.Redis.WithProxyVsBare)
	}
}

// write saves the report as indented JSON at path, creating its directory.
func (rep report) write(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// median of f over rs; the mean of the middle two for an even count.
func median(rs []roundResult, f func(roundResult) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.2fms", ms(d)) }
