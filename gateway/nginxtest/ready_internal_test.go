package nginxtest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWaitReadyNotFooledByAnotherListener: a listener on the port is not nginx ready
// until nginx's pid file names the process Start started; before that (the port was
// taken by another process) waitReady waits, and reports nginx's exit.
func TestWaitReadyNotFooledByAnotherListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pidFile := filepath.Join(t.TempDir(), "nginx.pid")
	if err := os.WriteFile(pidFile, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { time.Sleep(300 * time.Millisecond); close(exited) }() // nginx gives up its bind
	if err := waitReady(ln.Addr().String(), pidFile, 12345, exited); err == nil {
		t.Fatal("waitReady: ready on another process's listener")
	}
	if err := os.WriteFile(pidFile, []byte("12345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(ln.Addr().String(), pidFile, 12345, make(chan struct{})); err != nil {
		t.Fatalf("waitReady with its pid file written: %v", err)
	}
}
