//go:build unix

package porttest_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/porttest"
)

// TestReservedPortIsDeadAndKept: a reserved port refuses connections, cannot be bound by
// another listener, and serves once Listen is called.
func TestReservedPortIsDeadAndKept(t *testing.T) {
	p := porttest.Reserve(t)
	if _, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a reserved port: got %v, want connection refused", err)
	}
	if ln, err := net.Listen("tcp", p.Addr()); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			ln.Close()
		}
		t.Fatalf("another listener on a reserved port: got %v, want address already in use", err)
	}

	ln := p.Listen()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "alive")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(p.URL())
	if err != nil {
		t.Fatalf("GET after Listen: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "alive" {
		t.Fatalf("GET after Listen: %q, want %q", b, "alive")
	}
}

// TestReservedPortsDiffer: the kernel does not hand a reserved port out again.
func TestReservedPortsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p := porttest.Reserve(t)
		if seen[p.Addr()] {
			t.Fatalf("port %s reserved twice", p.Addr())
		}
		seen[p.Addr()] = true
	}
}
