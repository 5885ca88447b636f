package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the benchmark. Its output goes to a log file, shown when it
// fails to start or dies.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been waited for
	err     error         // Wait's result, set before done is closed
}

// procs owns every child it started and stops them all, whatever happened.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv as a child named name, logging to dir/name.log. The child gets its own
// process group, so a Ctrl-C reaches only the benchmark, which then stops the children in
// order; on Linux it is also killed should the benchmark itself die (Pdeathsig).
func (ps *procs) start(dir, name string, argv, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll asks every child to stop (SIGTERM), waits up to grace for each, then kills what
// is left. It is safe to call more than once.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for _, p := range list {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, p := range list {
		select {
		case <-p.done:
		case <-deadline.C:
			// Grace is spent: kill this one and everything after it without waiting again.
			for _, q := range list {
				_ = killGroup(q.cmd.Process)
			}
		}
		<-p.done
	}
}

// pid is the child's process ID, for /proc/<pid>/stat.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has stopped, and why.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// logTail returns the last lines of the child's output, for error messages.
func (p *proc) logTail(lines int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// failure describes a child that did not come up, with its last output.
func (p *proc) failure(what string, err error) error {
	msg := fmt.Sprintf("%s %s: %v", p.name, what, err)
	if tail := p.logTail(15); tail != "" {
		msg += "\n--- " + p.logPath + " (last lines) ---\n" + tail
	}
	return errors.New(msg)
}

// waitReady polls url until it answers want, the child dies, ctx ends or timeout passes.
// Polling with a bound, not sleeping a fixed time: a slow machine just takes longer.
func waitReady(ctx context.Context, p *proc, url string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error // the latest reason it was not ready, for the failure message
	for {
		if dead, err := p.exited(); dead {
			return p.failure("exited before it was ready", err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = fmt.Errorf("GET %s: status %d, want %d", url, resp.StatusCode, want)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, context.Canceled) {
				return err
			}
			return p.failure(fmt.Sprintf("not ready after %s", timeout), last)
		case <-tick.C:
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago. Another
// process could take it before the child listens; the child then fails to start and says so.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// buildAuthgate compiles ./cmd/authgate of the module at root into dir.
func buildAuthgate(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "authgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/authgate")
	cmd.Dir = root
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := cmd.Run(); err != nil {
		if out := strings.TrimSpace(buf.String()); out != "" {
			return "", fmt.Errorf("go build ./cmd/authgate: %w\n%s", err, out)
		}
		return "", fmt.Errorf("go build ./cmd/authgate: %w", err)
	}
	return out, nil
}

// moduleRoot is the directory of the main module's go.mod, so `go run ./bench` works from
// anywhere inside the repository.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module; run from the repository root")
	}
	return filepath.Dir(gomod), nil
}
