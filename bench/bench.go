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
	targets, err := startTargets(ctx, ps, tmp, authgate, o.scenarios, keys, tokenTTL(o, len(o.scenarios)))
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := probe(ctx, t); err != nil {
			return err
		}
	}

	l := load{Duration: o.duration, Connections: o.connections, Threads: o.threads, Rate: o.rate}
	if o.warmup > 0 {
		for _, t := range targets {
			logf("warm-up %s for %s", t.name, o.warmup)
			wl := l
			wl.URL, wl.Header, wl.Duration = t.url, t.header, o.warmup
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
			logf("round %d/%d %-20s %9.0f req/s  p50 %-9s p99 %-9s %6.1f CPU-µs/req%s",
				r+1, o.rounds, t.name, rr.RPS, fmtDur(rr.P50), fmtDur(rr.P99), rr.CPUPerReq, rr.problems(t.want))
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

// startTargets starts the upstream, then the process behind each scenario: the bare proxy,
// or one authgate per distinct configuration, which gets keys' environment. JWT rows get
// their tokens, minted from keys and valid for ttl.
func startTargets(ctx context.Context, ps *procs, dir, authgate string, names []string, keys *jwtKeys, ttl time.Duration) ([]target, error) {
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
		if t, ok := byConfig[sc.gateway]; ok {
			targets = append(targets, target{scenario: sc, proc: t.proc, url: t.url + sc.path})
			continue
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		var p *proc
		if sc.gateway == "" {
			p, err = ps.start(dir, "bareproxy", []string{exe, "bareproxy", "--listen", addr, "--upstream", upURL}, nil)
			if err == nil {
				// The bare proxy has no health path: any answer from the upstream will do.
				err = waitReady(ctx, p, "http://"+addr+sc.path, http.StatusOK, readyIn)
			}
		} else {
			gateways++
			p, err = startAuthgate(ctx, ps, dir, authgate, fmt.Sprintf("authgate-%d", gateways), addr, upURL, sc, keys.env(), readyIn)
		}
		if err != nil {
			return nil, err
		}
		t := target{scenario: sc, proc: p, url: "http://" + addr}
		byConfig[sc.gateway] = t
		t.url += sc.path
		targets = append(targets, t)
	}
	return targets, nil
}

// startAuthgate writes sc's configuration and runs `authgate serve` on it, with sc's
// environment and env, until /readyz.
func startAuthgate(ctx context.Context, ps *procs, dir, bin, name, addr, upURL string, sc scenario, env []string, readyIn time.Duration) (*proc, error) {
	opsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(gatewayConfig(addr, opsAddr, upURL, sc.gateway)), 0o600); err != nil {
		return nil, fmt.Errorf("%s config: %w", name, err)
	}
	p, err := ps.start(dir, name, []string{bin, "serve", "--config", cfgPath}, append(slices.Clone(sc.env), env...))
	if err != nil {
		return nil, err
	}
	return p, waitReady(ctx, p, "http://"+opsAddr+"/readyz", http.StatusOK, readyIn)
}

// probe sends one request of t and checks its status, so a misconfigured scenario (a 404
// where a 200 was meant) fails before any load rather than producing a fast, wrong row.
func probe(ctx context.Context, t target) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	for k, vs := range t.header {
		req.Header[k] = vs
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return t.proc.failure("probe", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if resp.StatusCode != t.want {
		return t.proc.failure("probe", fmt.Errorf("GET %s: status %d, want %d: %s", t.url, resp.StatusCode, t.want, strings.TrimSpace(string(body))))
	}
	return nil
}

// measure runs one round on t and charges the CPU its process used to the requests done.
func measure(ctx context.Context, ld loader, l load, t target) (roundResult, error) {
	l.URL, l.Header = t.url, t.header
	cpu0, err := procCPU(t.proc.pid())
	if err != nil {
		return roundResult{}, err
	}
	res, err := ld.Run(ctx, l, t.want)
	if err != nil {
		return roundResult{}, err
	}
	cpu1, err := procCPU(t.proc.pid())
	if err != nil {
		return roundResult{}, err
	}
	if dead, err := t.proc.exited(); dead {
		return roundResult{}, t.proc.failure("died during the round", err)
	}
	rr := roundResult{
		Requests: res.Requests, RPS: res.RPS, P50: res.P50, P99: res.P99,
		CPU: cpu1 - cpu0, Errors: res.Errors, NotWanted: res.NotWanted,
	}
	if res.Requests > 0 {
		rr.CPUPerReq = rr.CPU.Seconds() * 1e6 / float64(res.Requests)
	}
	return rr, nil
}
