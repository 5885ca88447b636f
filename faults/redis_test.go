//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// redisReady bounds how long a redis-server start waits for PING.
const redisReady = 10 * time.Second

// redisServer is one redis-server on a fixed loopback port that persists every write
// (appendonly, fsync always), so a SIGKILL loses nothing and a restart on the same port
// comes back with its data, or without it when its directory is emptied first.
type redisServer struct {
	bin  string
	dir  string
	port int
	out  *syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts a persistent redis-server on a free port; it is killed when t ends.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin := redisBinary(t)
	r := &redisServer{bin: bin, dir: t.TempDir(), out: &syncBuffer{}}
	t.Cleanup(func() { r.kill() })
	var err error
	for range 5 {
		if r.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if err = r.launch(time.Now().Add(redisReady)); err == nil {
			return r
		}
	}
	t.Fatalf("start redis-server: %v\n%s", err, r.out.String())
	return nil
}

// redisBinary finds redis-server, failing (AUTHGATE_REQUIRE_REDIS=1) or skipping without it.
func redisBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("AUTHGATE_REQUIRE_REDIS") == "1" {
		t.Fatal("redis-server not found (AUTHGATE_REQUIRE_REDIS=1)")
	}
	t.Skip("!!! SKIPPING: redis-server not found; install it (apt-get install -y redis-server)")
	return ""
}

// Addr is "127.0.0.1:port"; it never changes.
func (r *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// errRedisExited reports a redis-server that exited before answering PING.
var errRedisExited = errors.New("redis-server exited before it was ready")

// launch starts the process and waits for PING until deadline.
func (r *redisServer) launch(deadline time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", "", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", r.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	for {
		err := ping(r.Addr())
		if err == nil {
			r.cmd, r.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return errRedisExited
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("no PONG on %s within %s: %w", r.Addr(), redisReady, err)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone; nothing when stopped.
func (r *redisServer) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd, r.done = nil, nil
}

// restart starts the server again on the same port, after emptying its directory when
// keepData is false, and waits for PING (retrying while the port is still held).
func (r *redisServer) restart(t testing.TB, keepData bool) {
	t.Helper()
	r.kill()
	if !keepData {
		entries, err := os.ReadDir(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(r.dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(redisReady)
	for {
		err := r.launch(deadline)
		if err == nil {
			return
		}
		if !errors.Is(err, errRedisExited) || time.Now().After(deadline) {
			t.Fatalf("restart redis-server: %v\n%s", err, r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping sends PING on a fresh connection and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("deadline: %w", err)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("got %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
