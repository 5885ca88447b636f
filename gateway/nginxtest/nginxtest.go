// Package nginxtest starts a real nginx on a free loopback port for tests, and reads the
// configuration a test runs from the documentation, so the documented configuration is
// the one that is proven.
//
// When nginx is not installed the tests are skipped with a loud message, unless
// AUTHGATE_REQUIRE_NGINX=1 is set (as CI does), in which case they fail.
package nginxtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long Start waits for nginx to accept connections.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds how long the cleanup waits after SIGQUIT before SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 20 * time.Millisecond
	// startAttempts is how many free ports Start tries, since another process may take
	// the port between the probe listener closing and nginx binding it.
	startAttempts = 5
)

// FindBinary returns the nginx binary: on PATH, or at /usr/sbin/nginx.
func FindBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("nginx is not on PATH nor in /usr/sbin")
}

// Start runs nginx in the foreground (one worker, no daemon) with server as the body of
// its only server block, to which it adds the listen directive: 127.0.0.1 on a free
// port. Every file nginx writes (pid, logs, temp files) is in t.TempDir(). It returns
// "127.0.0.1:port" once nginx accepts connections, and stops nginx when the test ends.
//
// When nginx is missing Start calls t.Skip, or t.Fatal when AUTHGATE_REQUIRE_NGINX is "1".
func Start(t testing.TB, server string) string {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		msg := "nginx not found: install it (apt-get install -y nginx); CI must have it: " + err.Error()
		if os.Getenv("AUTHGATE_REQUIRE_NGINX") == "1" {
			t.Fatal("nginxtest: " + msg + " (AUTHGATE_REQUIRE_NGINX=1)")
		}
		t.Skip("nginxtest: !!! SKIPPING the tests with the real nginx: " + msg)
	}
	dir := t.TempDir()
	var lastErr error
	var out *syncBuffer
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("nginxtest: find a free port: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(Config(dir, addr, server)), 0o600); err != nil {
			t.Fatal(err)
		}
		out = &syncBuffer{}
		// No -e (nginx 1.19.5+): before reading conf nginx may complain that it cannot open
		// its compiled-in error log, and carries on with the one conf names.
		cmd := exec.Command(bin, "-p", dir+"/", "-c", conf)
		cmd.Stdout, cmd.Stderr = out, out
		if lastErr = cmd.Start(); lastErr != nil {
			break
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if lastErr = waitReady(addr, filepath.Join(dir, "nginx.pid"), cmd.Process.Pid, exited); lastErr == nil {
			t.Cleanup(func() { stop(t, cmd, exited) })
			return addr
		}
		stop(t, cmd, exited)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	t.Fatalf("nginxtest: start nginx: %v\n--- nginx output ---\n%s\n--- error.log ---\n%s", lastErr, out, log)
	return ""
}

// Config is the whole nginx.conf Start runs: every path under dir, server listening on
// addr. Running as root, the worker stays root so it can read dir (a test's TempDir).
func Config(dir, addr, server string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	return fmt.Sprintf(`%sdaemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    server {
        listen %[3]s;
%[4]s
    }
}
`, user, dir, addr, server)
}

// waitReady waits until the nginx whose master has process id pid accepts connections on
// addr. The port was picked free before nginx started, so another process may have taken
// it in between, and a connection to addr alone could reach that process while nginx
// still retries its bind (it then exits, and Start tries another port). nginx writes
// pidFile once its listening sockets are bound: the file holding pid tells them apart.
func waitReady(addr, pidFile string, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			return errors.New("nginx exited before accepting connections")
		default:
		}
		err := fmt.Errorf("nginx has not written its pid %d to %s", pid, pidFile)
		if b, rerr := os.ReadFile(pidFile); rerr == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not accept connections on %s within %v: %w", addr, readyTimeout, err)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// stop asks nginx to quit (SIGQUIT: graceful), then kills it after stopTimeout.
func stop(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("nginxtest: nginx did not quit within %v; killed", stopTimeout)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Section is the part of markdown under the heading line exactly equal to heading (e.g.
// "## nginx"), up to the next heading of the same or a higher level; "" if absent.
func Section(markdown, heading string) string {
	level := strings.IndexByte(heading, ' ')
	lines := strings.Split(markdown, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != heading {
			continue
		}
		var b strings.Builder
		fenced := false
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "```") {
				fenced = !fenced
			}
			if !fenced && strings.HasPrefix(l, "#") {
				if n := strings.IndexByte(l, ' '); n > 0 && n <= level && strings.Trim(l[:n], "#") == "" {
					break
				}
			}
			b.WriteString(l + "\n")
		}
		return b.String()
	}
	return ""
}

// FencedBlocks returns the bodies of the fenced code blocks in markdown whose info string
// is lang ("```nginx"), in order.
func FencedBlocks(markdown, lang string) []string {
	var out []string
	var cur *strings.Builder
	for _, l := range strings.Split(markdown, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's stdout and
// stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
