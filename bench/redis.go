package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"

	"github.com/redis/go-redis/v9"
)

// errNoRedisServer is returned by findRedisServer when redis-server is not installed.
var errNoRedisServer = errors.New("redis-server not found")

// redisServer is the run's redis-server, shared by every redis row, and a client the
// benchmark reads its counters with.
type redisServer struct {
	proc   *proc
	addr   string
	client *redis.Client
}

// findRedisServer finds redis-server as the tests do (redistest.FindBinary).
func findRedisServer() (string, error) {
	bin, err := redistest.FindBinary()
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoRedisServer, err)
	}
	return bin, nil
}

// startRedis runs bin on a free loopback port with no persistence and waits until it
// answers PING. ps stops it with the other children; Close closes the client only.
func startRedis(ctx context.Context, ps *procs, dir, bin string, readyIn time.Duration) (*redisServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redis-server port: %w", err)
	}
	argv := []string{bin, "--save", "", "--appendonly", "no", "--port", port, "--bind", "127.0.0.1", "--dir", dir}
	p, err := ps.start(dir, "redis-server", argv, nil)
	if err != nil {
		return nil, err
	}
	rs := &redisServer{proc: p, addr: addr, client: redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1,
	})}
	if err := rs.waitReady(ctx, readyIn); err != nil {
		_ = rs.Close()
		return nil, err
	}
	return rs, nil
}

// waitReady polls PING until it answers, the server dies, ctx ends or timeout passes.
func (rs *redisServer) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if dead, err := rs.proc.exited(); dead {
			return rs.proc.failure("exited before it was ready", err)
		}
		if last = rs.client.Ping(ctx).Err(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, context.Canceled) {
				return err
			}
			return rs.proc.failure(fmt.Sprintf("not answering PING after %s", timeout), last)
		case <-tick.C:
		}
	}
}

// env is what a redis row's authgate gets: the server's address.
func (rs *redisServer) env() []string { return []string{envRedisAddr + "=" + rs.addr} }

// redisStats are the redis-server's cumulative counters that measure reads.
type redisStats struct {
	// commands is total_commands_processed: every command run, those a script runs (the
	// limiter's TIME, GET, SET) included, and earlier INFOs, but not the INFO reading it.
	commands int64
	// scripts is how many EVAL and EVALSHA calls were made: one per request for the
	// limiter's GCRA, each a round trip.
	scripts int64
}

// stats reads the server's counters with one INFO all.
func (rs *redisServer) stats(ctx context.Context) (redisStats, error) {
	info, err := rs.client.Info(ctx, "all").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("redis-server INFO: %w", err)
	}
	return parseRedisStats(info)
}

// Close closes the benchmark's client; the server itself is one of ps's children.
func (rs *redisServer) Close() error { return rs.client.Close() }

// scriptCommands are the commands whose calls count as script calls (commandstats names).
var scriptCommands = []string{"eval", "evalsha", "eval_ro", "evalsha_ro"}

// parseRedisStats reads total_commands_processed and the script commands' calls from an
// INFO all reply. A script command never called has no cmdstat line: 0 calls.
func parseRedisStats(info string) (redisStats, error) {
	var st redisStats
	found := false
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return st, fmt.Errorf("redis-server INFO: total_commands_processed: %w", err)
			}
			st.commands, found = n, true
			continue
		}
		name, fields, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || !slices.Contains(scriptCommands, name) {
			continue
		}
		calls, err := cmdstatCalls(fields)
		if err != nil {
			return st, fmt.Errorf("redis-server INFO: cmdstat_%s: %w", name, err)
		}
		st.scripts += calls
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("redis-server INFO: %w", err)
	}
	if !found {
		return st, errors.New("redis-server INFO: no total_commands_processed field")
	}
	return st, nil
}

// cmdstatCalls is the calls= field of a commandstats line's fields,
// "calls=5,usec=40,usec_per_call=8.00,rejected_calls=0,failed_calls=0".
func cmdstatCalls(fields string) (int64, error) {
	for f := range strings.SplitSeq(fields, ",") {
		if v, ok := strings.CutPrefix(f, "calls="); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no calls= field")
}
