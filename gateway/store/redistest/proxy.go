package redistest

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy between a client and a Server that can turn into a blackhole: it
// then keeps every connection open and accepts new ones, but forwards nothing and answers
// nothing, as a network partition that drops packets (no RST) looks to the client.
type Proxy struct {
	target string
	ln     net.Listener
	hole   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards each connection to target. It is
// closed, with every connection it holds, when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial instead of the Server's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole switches the partition on (true) or off (false). While on, bytes read from
// either side are dropped; connections stay open. Turning it off resumes forwarding on
// the connections that are still open (what was dropped stays lost, so a client that
// timed out should reconnect, as it would after a real partition).
func (p *Proxy) Blackhole(on bool) { p.hole.Store(on) }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track records c so close can end it; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// untrack forgets c once it is closed.
func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns != nil {
		delete(p.conns, c)
	}
}

// serve forwards c to the target, or swallows it while the blackhole is on.
func (p *Proxy) serve(c net.Conn) {
	defer p.untrack(c)
	if p.hole.Load() {
		// Accepted (the kernel would have completed the handshake anyway) but never
		// answered: read and drop until the client or the proxy closes it.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	var d net.Dialer
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(up) {
		_ = c.Close()
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, c) })
	wg.Go(func() { p.pipe(c, up) })
	wg.Wait()
}

// pipe copies from src to dst, dropping what it reads while the blackhole is on, until
// either side fails; then it closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close stops accepting, closes every connection and waits for the goroutines.
func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
