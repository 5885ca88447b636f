package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// load is one run of a load generator against one URL.
type load struct {
	URL         string
	Header      http.Header
	Duration    time.Duration
	Connections int
	Threads     int     // wrk only
	Rate        float64 // requests per second; 0 = as fast as the connections allow
	// Tokens, when set, gives each request the next of its bearer tokens (an -uncached
	// row); Header then holds no Authorization.
	Tokens *tokenPool
}

// loadResult is what a load generator measured.
type loadResult struct {
	Requests  int64         // completed requests, whatever their status
	Elapsed   time.Duration // how long the generator ran
	RPS       float64       // Requests / Elapsed, as the tool reports it
	P50, P99  time.Duration
	Errors    int64 // connect, read, write errors and timeouts
	NotWanted int64 // responses with another status than the scenario wants
}

// loader is a load generator.
type loader interface {
	// Name says which tool, and its version when known, for the report.
	Name() string
	// Run applies l and returns what was measured; status checks use want.
	Run(ctx context.Context, l load, want int) (loadResult, error)
}

// wrk drives the wrk binary. It cannot pace requests, so it only runs at max rate.
type wrk struct {
	path    string
	version string
}

func newWrk(ctx context.Context, path string) *wrk {
	w := &wrk{path: path, version: "wrk"}
	// `wrk -v` prints "wrk 4.2.0 [epoll] Copyright ..." and exits 1.
	out, _ := exec.CommandContext(ctx, path, "-v").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 && f[0] == "wrk" {
		w.version = "wrk " + f[1]
	}
	return w
}

func (w *wrk) Name() string { return w.version }

func (w *wrk) Run(ctx context.Context, l load, want int) (loadResult, error) {
	if l.Rate > 0 {
		return loadResult{}, errors.New("wrk cannot pace requests; use -tool vegeta with -rate")
	}
	secs := max(1, int(math.Round(l.Duration.Seconds())))
	threads := max(1, min(l.Threads, l.Connections))
	args := []string{
		"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(l.Connections),
		"-d" + strconv.Itoa(secs) + "s", "--latency",
	}
	names := make([]string, 0, len(l.Header))
	for k := range l.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range l.Header[k] {
			args = append(args, "-H", k+": "+v)
		}
	}
	if l.Tokens != nil {
		args = append(args, "-s", l.Tokens.script, l.URL, l.Tokens.file,
			strconv.FormatInt(l.Tokens.start(), 10), strconv.Itoa(threads))
	} else {
		args = append(args, l.URL)
	}
	// Bounded: wrk stops itself after -d; the context kills it should it hang.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.path, args...)
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return loadResult{}, fmt.Errorf("wrk: %w", ctx.Err())
		}
		return loadResult{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	out, err := parseWrk(stdout.String())
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk output: %w\n%s", err, stdout.String())
	}
	r := out.result()
	if l.Tokens != nil {
		if out.TokensPerThread < 0 {
			return loadResult{}, fmt.Errorf("wrk output: no %q line from the token script\n%s", wrkTokensLine, stdout.String())
		}
		l.Tokens.advance(out.TokensPerThread, threads)
	}
	if want < 400 {
		r.NotWanted = out.Non2xx3xx
	} else {
		// wrk only counts responses >= 400; wanting an error status, the others are wrong.
		r.NotWanted = out.Requests - out.Non2xx3xx
	}
	return r, nil
}

// wrkOutput is what parseWrk reads from `wrk --latency`.
type wrkOutput struct {
	Requests     int64
	Elapsed      time.Duration
	RPS          float64
	P50, P99     time.Duration
	SocketErrors int64 // connect + read + write + timeout
	Non2xx3xx    int64
	// TokensPerThread is what wrkTokenScript printed: the most tokens a thread sent; -1
	// without that line.
	TokensPerThread int64
}

func (o wrkOutput) result() loadResult {
	return loadResult{Requests: o.Requests, Elapsed: o.Elapsed, RPS: o.RPS, P50: o.P50, P99: o.P99, Errors: o.SocketErrors}
}

// parseWrk reads the summary wrk 4 prints with --latency:
//
//	  Latency Distribution
//	     50%  628.00us
//	     99%   11.84ms
//	  502345 requests in 10.00s, 80.12MB read
//	  Socket errors: connect 0, read 12, write 0, timeout 3
//	  Non-2xx or 3xx responses: 17
//	Requests/sec:  50212.34
//
// The request count, the duration, req/s, p50 and p99 are required; the error lines appear
// only when non-zero.
func parseWrk(s string) (wrkOutput, error) {
	o := wrkOutput{TokensPerThread: -1}
	var haveReqs, haveRPS, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) == 2 && f[0] == "50%":
			o.P50, err = parseWrkDuration(f[1])
			have50 = err == nil
		case len(f) == 2 && f[0] == "99%":
			o.P99, err = parseWrkDuration(f[1])
			have99 = err == nil
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			if o.Requests, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				break
			}
			o.Elapsed, err = parseWrkDuration(strings.TrimSuffix(f[3], ","))
			haveReqs = err == nil
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			o.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = err == nil
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			o.Non2xx3xx, err = strconv.ParseInt(f[4], 10, 64)
		case strings.HasPrefix(line, wrkTokensLine) && len(f) == 2:
			o.TokensPerThread, err = strconv.ParseInt(f[1], 10, 64)
		case strings.HasPrefix(line, "Socket errors:"):
			o.SocketErrors, err = parseSocketErrors(strings.TrimPrefix(line, "Socket errors:"))
		}
		if err != nil {
			return wrkOutput{}, fmt.Errorf("line %q: %w", line, err)
		}
	}
	switch {
	case !haveReqs:
		return wrkOutput{}, errors.New(`no "N requests in D" line`)
	case !haveRPS:
		return wrkOutput{}, errors.New(`no "Requests/sec:" line`)
	case !have50 || !have99:
		return wrkOutput{}, errors.New("no 50% and 99% lines: was --latency given?")
	}
	return o, nil
}

// parseSocketErrors sums " connect 0, read 12, write 0, timeout 3".
func parseSocketErrors(s string) (int64, error) {
	var sum int64
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return 0, fmt.Errorf("socket errors: %q", part)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("socket errors: %w", err)
		}
		sum += n
	}
	return sum, nil
}

// parseWrkDuration reads wrk's times: "628.00us", "1.06ms", "2.00s", "1.50m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		d      time.Duration
	}{ // longest suffix first: "ms" and "us" before "s"
		{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q", s)
			}
			return time.Duration(v * float64(u.d)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
