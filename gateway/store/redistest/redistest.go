// Package redistest starts a real redis-server on a free loopback port for tests.
//
// Tests that exercise behaviour users depend on (storage, pub/sub, outages)
// run against a real server rather than an emulation. When redis-server is
// not installed the tests are skipped with a loud message, unless
// AUTHGATE_REQUIRE_REDIS=1 is set (as CI does), in which case they fail.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds how long Start and Restart wait for the server to answer PING.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM before it sends SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 20 * time.Millisecond
	// startAttempts is how many free ports Start tries, since another process
	// may take the port between our probe listener closing and redis binding it.
	startAttempts = 5
)

// Server is a redis-server process owned by one test. It listens on
// 127.0.0.1 only and keeps no data on disk. A Server is safe for concurrent
// use, but Stop and Restart are meant to be called from the test goroutine.
type Server struct {
	bin  string
	dir  string
	port int
	out  *syncBuffer // the server's stdout and stderr, across restarts
	// conf, when set, is a configuration file in dir passed before every option (a
	// sentinel's, which the sentinel rewrites); sentinel adds --sentinel.
	conf     string
	sentinel bool
	// extra are options appended to the defaults (cluster mode, replicaof); a "{port}"
	// in them is replaced with the server's port.
	extra []string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result; read only after exited is closed
}

// Start starts redis-server (found on PATH, or at /usr/bin/redis-server or
// /usr/sbin/redis-server) bound to 127.0.0.1 on a free port, with no
// persistence (--save "" --appendonly no) and its working directory in
// t.TempDir(). It waits, polling PING for at most 10s, until the server
// answers, and registers a t.Cleanup that stops the server whether or not
// the test failed.
//
// When the binary is missing Start calls t.Skip, or t.Fatal when the
// environment variable AUTHGATE_REQUIRE_REDIS is "1".
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, serverSpec{})
}

// StartPersistent is Start with every write persisted before it is acknowledged
// (--appendonly yes --appendfsync always): Kill loses nothing, and Restart comes back
// with the data, or empty after Wipe.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	return start(t, serverSpec{extra: []string{"--appendonly", "yes", "--appendfsync", "always"}})
}

// Wipe removes the stopped server's data files, so that Restart comes back empty, as
// after a disk loss. It fails the test while the server runs.
func (s *Server) Wipe(t testing.TB) {
	t.Helper()
	if s.Running() {
		t.Fatalf("redistest: wipe %s: the server is running", s.Addr())
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatalf("redistest: wipe: %v", err)
	}
	for _, e := range entries {
		if s.conf != "" && filepath.Join(s.dir, e.Name()) == s.conf {
			continue // a sentinel's configuration is not data
		}
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			t.Fatalf("redistest: wipe: %v", err)
		}
	}
}

// serverSpec shapes a server that Start's variants (cluster nodes, replicas, sentinels)
// start.
type serverSpec struct {
	extra    []string
	sentinel bool
	// prepare runs before each launch attempt, with the chosen port (it writes a
	// sentinel's configuration file, or picks a cluster bus port).
	prepare func(s *Server) error
}

// requireBinary returns redis-server's path, or skips (fails, with
// AUTHGATE_REQUIRE_REDIS=1) the test.
func requireBinary(t testing.TB) string {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		msg := "redis-server not found: install it (apt-get install -y redis-server); CI must have it: " + err.Error()
		if os.Getenv("AUTHGATE_REQUIRE_REDIS") == "1" {
			t.Fatal("redistest: " + msg + " (AUTHGATE_REQUIRE_REDIS=1)")
		}
		t.Skip("redistest: !!! SKIPPING: " + msg)
	}
	return bin
}

// start starts one server described by spec on a free port.
func start(t testing.TB, spec serverSpec) *Server {
	t.Helper()
	bin := requireBinary(t)
	// TempDir first: cleanups run last-in first-out, so the server is
	// stopped before its directory is removed.
	s := &Server{bin: bin, dir: t.TempDir(), out: &syncBuffer{}, sentinel: spec.sentinel}
	t.Cleanup(func() { s.cleanup(t) })

	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.extra = slices.Clone(spec.extra)
		if spec.prepare != nil {
			if err := spec.prepare(s); err != nil {
				t.Fatalf("redistest: prepare redis-server: %v", err)
			}
		}
		if lastErr = s.launch(time.Now().Add(readyTimeout)); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v\n--- redis-server output ---\n%s", lastErr, s.out.String())
	return nil
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Output returns what the server has logged so far, across restarts.
func (s *Server) Output() string { return s.out.String() }

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Kill stops the server with SIGKILL, as a crash would: nothing is flushed or handed
// over. Restart brings it back on the same port. Killing a stopped server does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		kill(p)
	}
}

// Addr returns the server's address, "127.0.0.1:port". It does not change
// across Stop and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop stops the server with SIGTERM and waits for it to exit, sending
// SIGKILL if it has not exited within 10s. The port number is kept, so
// Restart brings the server back at the same Addr. Stopping a stopped
// server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("redistest: stop redis-server on %s: %v\n--- redis-server output ---\n%s", s.Addr(), err, s.out.String())
	}
}

// Restart starts the server again on the same port and waits, for at most
// 10s, until it answers PING. It retries while the port is still held (for
// example in TIME_WAIT). The new server starts empty. Restart stops the
// server first if it is running.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	deadline := time.Now().Add(readyTimeout)
	var err error
	for {
		if err = s.launch(deadline); err == nil {
			return
		}
		if !errors.Is(err, errExited) || !time.Now().Before(deadline) {
			break
		}
		// The process died early, most likely because the port is not free
		// yet; try again until the deadline.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), t.Context().Err())
		}
	}
	t.Fatalf("redistest: restart redis-server on %s: %v\n--- redis-server output ---\n%s", s.Addr(), err, s.out.String())
}

// Client returns a go-redis client connected to the server, for assertions
// on the raw data. It is closed when the test ends, and it reconnects by
// itself after Restart.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:        s.Addr(),
		DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second,
	})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("redistest: close client: %v", err)
		}
	})
	return c
}

// errExited reports that redis-server exited before it answered PING.
var errExited = errors.New("redistest: redis-server exited before it was ready")

// launch starts one redis-server process and waits until it answers PING
// or the deadline passes. On failure the process has been killed and
// reaped.
func (s *Server) launch(deadline time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("redistest: redis-server is already running")
	}

	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	if s.sentinel {
		args = append(args, "--sentinel")
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "", // log to stdout, which we capture
		"--loglevel", "notice",
	)
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	fmt.Fprintf(s.out, "--- redistest: starting %s on port %d ---\n", s.bin, s.port)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: exec %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	addr := s.Addr()
	for {
		err := ping(addr, cmd.Process.Pid)
		if err == nil {
			s.proc = p
			return nil
		}
		if !time.Now().Before(deadline) {
			kill(p)
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within %s: %w", addr, readyTimeout, err)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w (%v)", errExited, p.err)
		case <-time.After(pollInterval):
		}
	}
}

// stop terminates the running process, if any.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		kill(p)
		return fmt.Errorf("redistest: sigterm: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		kill(p)
		return fmt.Errorf("redistest: redis-server ignored SIGTERM for %s and was killed", stopTimeout)
	}
}

// cleanup stops the server at the end of the test, killing it if it does
// not stop in time. It reports problems without stopping other cleanups.
func (s *Server) cleanup(t testing.TB) {
	if err := s.stop(); err != nil {
		t.Errorf("redistest: cleanup: %v\n--- redis-server output ---\n%s", err, s.out.String())
	}
}

// kill sends SIGKILL to p and waits for it to be reaped.
func kill(p *process) {
	_ = p.cmd.Process.Kill() // fails only if it already exited
	<-p.exited
}

// ping reports whether the redis-server with process id pid answers on addr. The port
// was picked free before the server was started (redis-server cannot be asked to choose
// one), so another process may have taken it in between: then a PING would be answered,
// by that process, while ours fails to bind and exits. INFO's process_id tells them apart.
func ping(addr string, pid int) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return fmt.Errorf("redistest: dial: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("redistest: set deadline: %w", err)
	}
	if _, err := conn.Write([]byte("PING\r\nINFO server\r\n")); err != nil {
		return fmt.Errorf("redistest: write ping: %w", err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("redistest: read pong: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redistest: unexpected reply to PING: %q", strings.TrimSpace(line))
	}
	head, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("redistest: read INFO: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(head), "$"))
	if err != nil || !strings.HasPrefix(head, "$") {
		return fmt.Errorf("redistest: unexpected reply to INFO: %q", strings.TrimSpace(head))
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return fmt.Errorf("redistest: read INFO: %w", err)
	}
	want := "process_id:" + strconv.Itoa(pid)
	for _, l := range strings.Split(string(info), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "process_id:") {
			if l != want {
				return fmt.Errorf("redistest: %s is answered by another process (%s, want %s): the port was taken", addr, l, want)
			}
			return nil
		}
	}
	return errors.New("redistest: INFO server has no process_id")
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: listen: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("redistest: close probe listener: %w", err)
	}
	return port, nil
}

// FindBinary locates redis-server on PATH or in the usual Debian places (/usr/bin,
// /usr/sbin, which PATH may lack). The bench uses it too.
func FindBinary() (string, error) {
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path, nil
	}
	// Checked in order when redis-server is not on PATH (Debian installs it
	// in /usr/bin; some images use /usr/sbin, which PATH may lack).
	fallbackPaths := []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"}
	for _, p := range fallbackPaths {
		if fi, statErr := os.Stat(p); statErr == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("not on PATH (%w) nor at %s", err, strings.Join(fallbackPaths, " or "))
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of exec's
// copying goroutines and the reads of failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
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

// isExecutable reports whether p is an executable regular file.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Pause stops the server process with SIGSTOP, as a hung machine would: connections stay
// open and nothing answers. Resume continues it; a paused server is resumed when the test
// ends, before it is stopped.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { s.signal(t, syscall.SIGCONT) })
}

// Resume continues a server stopped by Pause.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if err := s.proc.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("redistest: signal %s to %s: %v", sig, s.Addr(), err)
	}
}
