package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// options are the benchmark's flags.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	connections int
	threads     int
	rate        float64
	tool        string
	scenarios   []string
	out         string
	// jwtTokens is how many distinct tokens each -uncached row gets.
	jwtTokens int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of one round on one target")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load on each target before the first round; 0 = none")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each round loads every target once, in turn")
	fs.IntVar(&o.connections, "connections", 64, "concurrent connections")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.Float64Var(&o.rate, "rate", 0, "fixed request rate per second (vegeta only); 0 = max rate")
	fs.StringVar(&o.tool, "tool", "auto", "load generator: auto (wrk if on PATH, else vegeta), wrk or vegeta")
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	sel := fs.String("scenarios", strings.Join(names, ","), "comma-separated rows to run; "+baseline+" is always run")
	fs.IntVar(&o.jwtTokens, "jwt-tokens", 200000, "distinct tokens minted for each -uncached JWT row; more requests than that reuse them (see its cache hit ratio)")
	fs.StringVar(&o.out, "out", "", "JSON results file (default: bench/results/latest.json in the module)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.duration < time.Second:
		return o, fmt.Errorf("-duration must be at least 1s, got %s", o.duration)
	case o.warmup < 0:
		return o, fmt.Errorf("-warmup must be >= 0, got %s", o.warmup)
	case o.rounds < 1:
		return o, fmt.Errorf("-rounds must be >= 1, got %d", o.rounds)
	case o.connections < 1:
		return o, fmt.Errorf("-connections must be >= 1, got %d", o.connections)
	case o.threads < 1:
		return o, fmt.Errorf("-threads must be >= 1, got %d", o.threads)
	case o.rate < 0:
		return o, fmt.Errorf("-rate must be >= 0, got %g", o.rate)
	case o.jwtTokens < 1:
		return o, fmt.Errorf("-jwt-tokens must be >= 1, got %d", o.jwtTokens)
	}
	o.scenarios = []string{baseline}
	for n := range strings.SplitSeq(*sel, ",") {
		n = strings.TrimSpace(n)
		if n == "" || slices.Contains(o.scenarios, n) {
			continue
		}
		if !slices.Contains(names, n) {
			return o, fmt.Errorf("-scenarios: unknown %q; have %s", n, strings.Join(names, ", "))
		}
		o.scenarios = append(o.scenarios, n)
	}
	return o, nil
}

// chooseLoader picks the load generator for -tool and -rate.
func chooseLoader(ctx context.Context, o options) (loader, error) {
	path, lookErr := exec.LookPath("wrk")
	switch o.tool {
	case "vegeta":
		return vegetaLoader{}, nil
	case "wrk":
		if lookErr != nil {
			return nil, fmt.Errorf("-tool wrk: %w", lookErr)
		}
		if o.rate > 0 {
			return nil, errors.New("-rate needs vegeta: wrk cannot pace requests")
		}
		return newWrk(ctx, path), nil
	case "auto":
		if lookErr != nil || o.rate > 0 {
			return vegetaLoader{}, nil
		}
		return newWrk(ctx, path), nil
	}
	return nil, fmt.Errorf("-tool: want auto, wrk or vegeta, got %q", o.tool)
}

// target is a scenario bound to the process that serves it.
type target struct {
	scenario
	proc *proc
	url  string
	// redis is the run's redis-server for a redis row, measured with proc; else nil.
	redis *redisServer
	// metrics is the /metrics URL of the authgate process's ops listener; "" for the
	// bare proxy.
	metrics string
	// tokens is a distinctTokens row's pool; else nil.
	tokens *tokenPool
}

// runBench starts the processes, loads each target in alternating rounds and reports.
func runBench(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted; child processes stopped (%w)", err)
		}
	}()
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	ld, err := chooseLoader(ctx, o)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "authgate-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	ps := &procs{}
	defer ps.stopAll(5 * time.Second) // on every return: error, Ctrl-C or success

	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	logf("building ./cmd/authgate")
	authgate, err := buildAuthgate(ctx, root, tmp)
	if err != nil {
		return err
	}
	keys, err := newJWTKeys(tmp)
	if err != nil {
		return err
	}
	rs, names, err := redisFor(ctx, ps, tmp, o.scenarios, findRedisServer, logf)
	if err != nil {
		return err
	}
	if rs != nil {
		defer rs.Close()
	}
	o.scenarios = names
	targets, err := startTargets(ctx, ps, tmp, authgate, o.scenarios, keys, tokenTTL(o, len(o.scenarios)), rs)
	if err != nil {
		return err
	}
	if err := mintPools(ctx, targets, keys, tokenTTL(o, len(o.scenarios)), o.jwtTokens, tmp, logf); err != nil {
		return err
	}
	for _, t := range targets {
		if err := probe(ctx, t, 10*time.Second); err != nil {
			return err
		}
	}

	l := load{Duration: o.duration, Connections: o.connections, Threads: o.threads, Rate: o.rate}
	if o.warmup > 0 {
		for _, t := range targets {
			logf("warm-up %s for %s", t.name, o.warmup)
			wl := l
			wl.URL, wl.Header, wl.Duration, wl.Tokens = t.url, t.header, o.warmup, t.tokens
			if _, err := ld.Run(ctx, wl, t.want); err != nil {
				return fmt.Errorf("warm-up %s: %w", t.name, err)
			}
		}
	}
	results := make([][]roundResult, len(targets))
	for r := range o.rounds {
		for i, t := range targets {
			rr, err := measure(ctx, ld, l, t)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, t.name, err)
			}
			rr.Round = r + 1
			results[i] = append(results[i], rr)
			logf("round %d/%d %-27s %9.0f req/s  p50 %-9s p99 %-9s %6.1f CPU-µs/req%s%s%s",
				r+1, o.rounds, t.name, rr.RPS, fmtDur(rr.P50), fmtDur(rr.P99), rr.CPUPerReq, rr.redisNote(), rr.cacheNote(), rr.problems(t.want))
		}
	}

	rep := newReport(o, ld.Name(), targets, results)
	rep.print(stdout)
	out := o.out
	if out == "" {
		out = filepath.Join(root, "bench", "results", "latest.json")
	}
	if err := rep.write(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", out)
	return nil
}

// redisRows returns those of names whose scenario needs a redis-server.
func redisRows(names []string) []string {
	var out []string
	for _, sc := range scenarios {
		if sc.redis && slices.Contains(names, sc.name) {
			out = append(out, sc.name)
		}
	}
	return out
}

// redisFor starts the run's redis-server when names hold a redis row, with the binary
// find returns. Without one installed it skips those rows, loudly, and returns the other
// names: a machine without Redis still measures everything else.
func redisFor(ctx context.Context, ps *procs, dir string, names []string, find func() (string, error), logf func(string, ...any)) (*redisServer, []string, error) {
	rows := redisRows(names)
	if len(rows) == 0 {
		return nil, names, nil
	}
	bin, err := find()
	if errors.Is(err, errNoRedisServer) {
		logf("!!! SKIPPING %s: %v; install it (apt-get install -y redis-server) to measure mode: redis limits",
			strings.Join(rows, ", "), err)
		return nil, slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(rows, n) }), nil
	}
	if err != nil {
		return nil, nil, err
	}
	logf("starting redis-server for %s", strings.Join(rows, ", "))
	rs, err := startRedis(ctx, ps, dir, bin, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	return rs, names, nil
}

// startTargets starts the upstream, then the process behind each scenario: the bare proxy,
// or one authgate per distinct configuration, which gets keys' environment and, for a
// redis row, rs's address. JWT rows get their tokens, minted from keys and valid for ttl.
func startTargets(ctx context.Context, ps *procs, dir, authgate string, names []string, keys *jwtKeys, ttl time.Duration, rs *redisServer) ([]target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	const readyIn = 20 * time.Second
	upAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	upURL := "http://" + upAddr
	up, err := ps.start(dir, "upstream", []string{exe, "upstream", "--listen", upAddr}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, up, upURL+"/", http.StatusOK, readyIn); err != nil {
		return nil, err
	}

	byConfig := map[string]target{} // gateway text -> its process and base URL
	gateways := 0
	var targets []target
	now := time.Now()
	for _, sc := range scenarios {
		if !slices.Contains(names, sc.name) {
			continue
		}
		sc, err := sc.withCredential(keys, now, ttl)
		if err != nil {
			return nil, err
		}
		var redis *redisServer
		env := keys.env()
		if sc.redis {
			if rs == nil {
				return nil, fmt.Errorf("%s: needs a redis-server, none started", sc.name)
			}
			redis, env = rs, append(env, rs.env()...)
		}
		if t, ok := byConfig[sc.gateway]; ok {
			targets = append(targets, target{scenario: sc, proc: t.proc, url: t.url + sc.path, redis: redis, metrics: t.metrics})
			continue
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		var (
			p       *proc
			metrics string
		)
		if sc.gateway == "" {
			p, err = ps.start(dir, "bareproxy", []string{exe, "bareproxy", "--listen", addr, "--upstream", upURL}, nil)
			if err == nil {
				// The bare proxy has no health path: any answer from the upstream will do.
				err = waitReady(ctx, p, "http://"+addr+sc.path, http.StatusOK, readyIn)
			}
		} else {
			gateways++
			p, metrics, err = startAuthgate(ctx, ps, dir, authgate, fmt.Sprintf("authgate-%d", gateways), addr, upURL, sc, env, readyIn)
		}
		if err != nil {
			return nil, err
		}
		t := target{scenario: sc, proc: p, url: "http://" + addr, redis: redis, metrics: metrics}
		byConfig[sc.gateway] = t
		t.url += sc.path
		targets = append(targets, t)
	}
	return targets, nil
}

// startAuthgate writes sc's configuration and runs `authgate serve` on it, with sc's
// environment and env, until /readyz. It returns the process and its /metrics URL.
func startAuthgate(ctx context.Context, ps *procs, dir, bin, name, addr, upURL string, sc scenario, env []string, readyIn time.Duration) (*proc, string, error) {
	opsAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(gatewayConfig(addr, opsAddr, upURL, sc.gateway)), 0o600); err != nil {
		return nil, "", fmt.Errorf("%s config: %w", name, err)
	}
	p, err := ps.start(dir, name, []string{bin, "serve", "--config", cfgPath}, append(slices.Clone(sc.env), env...))
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + opsAddr + "/metrics", waitReady(ctx, p, "http://"+opsAddr+"/readyz", http.StatusOK, readyIn)
}

// mintPools gives each distinctTokens target its n tokens, valid for ttl.
func mintPools(ctx context.Context, targets []target, keys *jwtKeys, ttl time.Duration, n int, dir string, logf func(string, ...any)) error {
	now := time.Now()
	for i := range targets {
		t := &targets[i]
		if !t.distinctTokens {
			continue
		}
		start := time.Now()
		p, err := mintPool(ctx, keys, t.jwtAlg, now, ttl, n, dir, t.name)
		if err != nil {
			return err
		}
		t.tokens = p
		logf("minted %d distinct %s tokens for %s in %s", n, t.jwtAlg, t.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// probe sends requests of t until one gets t's status, for at most within, so a
// misconfigured scenario (a 404 where a 200 was meant) fails before any load rather than
// producing a fast, wrong row. It retries because with a Redis store authgate registers
// the bootstrap key in the background, after /readyz.
func probe(ctx context.Context, t target, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probeOnce(ctx, client, t)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if cerr := context.Cause(ctx); errors.Is(cerr, context.Canceled) {
				return cerr
			}
			return t.proc.failure(fmt.Sprintf("probe (for %s)", within), err)
		case <-tick.C:
		}
	}
}

// probeOnce sends one request of t and checks its status.
func probeOnce(ctx context.Context, client *http.Client, t target) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	for k, vs := range t.header {
		req.Header[k] = vs
	}
	if t.tokens != nil {
		req.Header.Set("Authorization", "Bearer "+t.tokens.probe)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if resp.StatusCode != t.want {
		return fmt.Errorf("GET %s: status %d, want %d: %s", t.url, resp.StatusCode, t.want, strings.TrimSpace(string(body)))
	}
	return nil
}

// measure runs one round on t and charges the CPU its process used to the requests done;
// for a redis row, also the redis-server's CPU and the commands it ran.
func measure(ctx context.Context, ld loader, l load, t target) (roundResult, error) {
	l.URL, l.Header, l.Tokens = t.url, t.header, t.tokens
	before, err := t.counters(ctx)
	if err != nil {
		return roundResult{}, err
	}
	res, err := ld.Run(ctx, l, t.want)
	if err != nil {
		return roundResult{}, err
	}
	after, err := t.counters(ctx)
	if err != nil {
		return roundResult{}, err
	}
	if dead, err := t.proc.exited(); dead {
		return roundResult{}, t.proc.failure("died during the round", err)
	}
	rr := roundResult{
		Requests: res.Requests, RPS: res.RPS, P50: res.P50, P99: res.P99,
		CPU: after.cpu - before.cpu, Errors: res.Errors, NotWanted: res.NotWanted,
	}
	if t.cacheMeasured() {
		c := after.cache.sub(before.cache)
		rr.Cache = &c
	}
	if t.redis != nil {
		if dead, err := t.redis.proc.exited(); dead {
			return roundResult{}, t.redis.proc.failure("died during the round", err)
		}
		// The second INFO counts the first: that one is the benchmark's, not authgate's.
		rr.Redis = &redisRound{
			CPU:      after.redisCPU - before.redisCPU,
			Commands: after.redis.commands - before.redis.commands - 1,
			Scripts:  after.redis.scripts - before.redis.scripts,
		}
	}
	if res.Requests > 0 {
		n := float64(res.Requests)
		rr.CPUPerReq = rr.CPU.Seconds() * 1e6 / n
		if rr.Redis != nil {
			rr.Redis.CPUPerReq = rr.Redis.CPU.Seconds() * 1e6 / n
			rr.Redis.CommandsPerReq = float64(rr.Redis.Commands) / n
			rr.Redis.ScriptsPerReq = float64(rr.Redis.Scripts) / n
		}
	}
	return rr, nil
}

// counters are the cumulative figures measure takes before and after a round.
type counters struct {
	cpu      time.Duration     // the proxy's
	redisCPU time.Duration     // the redis-server's, for a redis row
	redis    redisStats        // the redis-server's commands, for a redis row
	cache    cacheLookupCounts // authgate's credential cache lookups, for a JWT row
}

// cacheMeasured says whether measure reads t's credential cache lookups: for the JWT rows,
// whose figures depend on the verified-token cache.
func (t target) cacheMeasured() bool { return t.jwtAlg != "" && t.metrics != "" }

// counters reads t's process CPU and, for a redis row, its redis-server's CPU and
// command count.
func (t target) counters(ctx context.Context) (counters, error) {
	var c counters
	var err error
	if c.cpu, err = procCPU(t.proc.pid()); err != nil {
		return c, err
	}
	if t.cacheMeasured() {
		// The first scrape's CPU (well under a millisecond) falls in the round: noise.
		if c.cache, err = scrapeCache(ctx, http.DefaultClient, t.metrics); err != nil {
			return c, err
		}
	}
	if t.redis == nil {
		return c, nil
	}
	if c.redisCPU, err = procCPU(t.redis.proc.pid()); err != nil {
		return c, err
	}
	if c.redis, err = t.redis.stats(ctx); err != nil {
		return c, err
	}
	return c, nil
}
