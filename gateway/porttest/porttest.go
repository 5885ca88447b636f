//go:build unix

// Package porttest reserves loopback TCP ports for tests. A reserved port has no listener,
// so a connection to it is refused, and no other socket can bind it until the test ends,
// so it stays dead (a parallel test cannot start a server there) and a server can later be
// started on it without the race of a port picked free, closed and bound again.
package porttest

import (
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Port is a reserved 127.0.0.1 port: a TCP socket bound to it that does not listen.
type Port struct {
	t    testing.TB
	addr string

	mu sync.Mutex
	fd int // -1 once closed or handed to a listener
}

// Reserve binds a socket to a free 127.0.0.1 port chosen by the kernel and keeps it until
// the test ends.
//
// The socket does not set SO_REUSEADDR: Linux lets sockets share a port only when all of
// them set it, so every other bind to the port (Go's listeners set it) fails with
// "address already in use", and the kernel hands the port to no bind(":0") or outgoing
// connection either. A connection to a port whose only socket does not listen is refused.
func Reserve(t testing.TB) *Port {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("porttest: socket: %v", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatalf("porttest: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("porttest: getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		t.Fatalf("porttest: bound to %T, want an IPv4 address", sa)
	}
	p := &Port{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)), fd: fd}
	t.Cleanup(p.release)
	return p
}

// Addr is "127.0.0.1:port".
func (p *Port) Addr() string { return p.addr }

// URL is "http://127.0.0.1:port".
func (p *Port) URL() string { return "http://" + p.addr }

// Listen starts listening on the reserved port and returns the listener; closing it
// frees the port. Listen can be called once.
func (p *Port) Listen() net.Listener {
	p.t.Helper()
	p.mu.Lock()
	fd := p.fd
	p.fd = -1
	p.mu.Unlock()
	if fd < 0 {
		p.t.Fatalf("porttest: %s: Listen after the port was released", p.addr)
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		syscall.Close(fd)
		p.t.Fatalf("porttest: listen on %s: %v", p.addr, err)
	}
	f := os.NewFile(uintptr(fd), "porttest "+p.addr)
	defer f.Close() // FileListener holds its own duplicate of fd
	ln, err := net.FileListener(f)
	if err != nil {
		p.t.Fatalf("porttest: listener on %s: %v", p.addr, err)
	}
	return ln
}

// release closes the socket unless Listen has taken it.
func (p *Port) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		syscall.Close(p.fd)
		p.fd = -1
	}
}
