// Command bench is `make bench`: it measures authgate against a bare httputil.ReverseProxy,
// with the same upstream, in the same run (docs/benchmarks.md).
//
// It builds ./cmd/authgate, starts three kinds of process on loopback ports (an upstream, the
// bare proxy and one authgate per distinct scenario config), so that each proxy's CPU time
// can be read from /proc alone, and loads them in alternating rounds with wrk (or, without
// wrk, the vegeta library). It prints a table and writes bench/results/latest.json.
//
//	go run ./bench [-duration 5s] [-rounds 3] [-connections 64] [-tool auto|wrk|vegeta] [-rate 0]
//
// The same binary also serves as the upstream and the bare proxy when re-executed as
// `bench upstream --listen ADDR` or `bench bareproxy --listen ADDR --upstream URL`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// run dispatches to a child role or runs the benchmark.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "upstream":
			return upstreamCmd(ctx, args[1:], stderr)
		case "bareproxy":
			return bareProxyCmd(ctx, args[1:], stderr)
		}
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return runBench(ctx, opts, stdout, stderr)
}
