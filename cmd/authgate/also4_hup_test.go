package main

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFaultAlso4_EarlySIGHUPDoesNotKill: a SIGHUP that arrives while the gateway is still
// starting (here: while it reads its configuration file, long before the reloader exists)
// neither kills the process nor is lost: it becomes ready and reloads once.
//
// The configuration file is a named pipe, so the test knows the process is inside the
// configuration read when the pipe opens, and signals exactly then; the file is written
// afterwards. Five runs.
func TestFaultAlso4_EarlySIGHUPDoesNotKill(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	for run := range 5 {
		dir := t.TempDir()
		path := filepath.Join(dir, "gateway.yaml")
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		// Listeners on 127.0.0.1:0, read back from the serving line (gatewayProc.serving).
		content := gatewayConfig(t, up.URL, "", "a")
		g := &gatewayProc{t: t, logs: &lineLog{}, stderr: &lineLog{}, done: make(chan struct{})}
		g.cmd = exec.Command(binPath, "serve", "--config", path)
		g.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		g.cmd.Stdout, g.cmd.Stderr = g.logs, g.stderr
		if err := g.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := g.cmd.Wait()
			var exitErr *exec.ExitError
			switch {
			case errors.As(err, &exitErr):
				g.exitCode = exitErr.ExitCode()
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					g.exitCode = -int(ws.Signal())
				}
			case err != nil:
				g.exitCode = -1000
			}
			close(g.done)
		}()
		t.Cleanup(func() {
			select {
			case <-g.done:
			default:
				_ = g.cmd.Process.Kill()
				<-g.done
			}
		})
		exited := func(what string) {
			select {
			case <-g.done:
				t.Fatalf("run %d: authgate exited (%d; -1: killed by SIGHUP) %s; stderr:\n%s",
					run, g.exitCode, what, strings.Join(g.stderr.all(), "\n"))
			default:
			}
		}
		// The non-blocking open succeeds once the process has the pipe open to read it.
		var w *os.File
		eventually(t, "authgate opens its configuration file", func() bool {
			exited("before reading its configuration")
			f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return false
			}
			w = f
			return true
		})
		g.signal(syscall.SIGHUP)
		if _, err := w.WriteString(content); err != nil {
			t.Fatalf("run %d: write the configuration: %v", run, err)
		}
		// The reload reads a regular file: put one in the pipe's place before its EOF.
		writeConfig(t, path+".tmp", content)
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		w.Close()

		eventually(t, "the serving log line after an early SIGHUP", func() bool {
			exited("after a SIGHUP during start")
			return g.serving()
		})
		eventually(t, "/readyz 200 after an early SIGHUP", func() bool { code, _ := g.ops("/readyz"); return code == http.StatusOK })
		if code, _ := g.get("/a"); code != http.StatusOK {
			t.Errorf("run %d: GET /a = %d, want 200", run, code)
		}
		// The early signal was kept and acted on once the reloader existed.
		eventually(t, "the early SIGHUP's reload", func() bool { return g.logLine("config reloaded") != nil })
		g.signal(syscall.SIGTERM)
		if code := g.wait(); code != 0 {
			t.Errorf("run %d: exit code after SIGTERM = %d, want 0", run, code)
		}
	}
}
