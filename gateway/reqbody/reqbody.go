// Package reqbody keeps request bodies from holding a connection: a deadline for the next
// bytes of a body (server.body_timeout), and Connection: close on an answer written before
// the body was read to its end, so net/http does not wait to drain a body that may never
// come.
package reqbody

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
)

// Guard returns the middleware. idle is the longest wait for the next bytes of a body
// (0: none); readTimeout is server.read_timeout, which the body deadline never extends.
// A request without a body passes untouched.
func Guard(idle, readTimeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				next.ServeHTTP(w, r)
				return
			}
			b := &body{rc: r.Body, ctl: http.NewResponseController(w), idle: idle, length: r.ContentLength}
			if readTimeout > 0 {
				b.end = time.Now().Add(readTimeout)
			}
			b.extend()
			r.Body = b
			c := &closer{ResponseWriter: w, b: b, h1: r.ProtoMajor == 1}
			next.ServeHTTP(c, r)
			if !c.wrote && b.stalled() {
				// The handler gave up on a body that stopped coming (the proxy takes the
				// request's cancelled context for a client gone, and answers nothing).
				httperr.Write(c, w.Header().Get("X-Request-Id"), errStalled)
			}
			if c.h1 && b.Unread() {
				if !c.wrote {
					w.Header().Set("Connection", "close") // net/http writes the answer after this
				}
				// net/http closes the body after the answer, reading up to 256 KiB of it
				// first; a deadline in the past makes that read give up at once.
				_ = b.ctl.SetReadDeadline(time.Now())
			}
		})
	}
}

// body tracks how far a request body was read. Read runs on whichever goroutine reads the
// body (the proxy's transport writes it from its own), so the state is locked.
type body struct {
	rc     io.ReadCloser
	ctl    *http.ResponseController
	idle   time.Duration
	end    time.Time // server.read_timeout's bound; zero: none
	length int64     // Content-Length; -1 unknown (chunked)

	mu       sync.Mutex
	n        int64
	done     bool // read to its end
	timedOut bool // the next bytes did not come within idle
}

var errStalled = &httperr.Error{Status: http.StatusRequestTimeout, Code: "request_timeout",
	Msg: "the request body stopped arriving"}

// stalled reports whether a read of the body timed out.
func (b *body) stalled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	var ne net.Error
	switch {
	case b.done:
	case errors.As(err, &ne) && ne.Timeout():
		b.timedOut = true
	case err == io.EOF || (b.length >= 0 && b.n >= b.length):
		// Read to its end. The deadline needs no lifting: net/http clears it when it starts
		// watching the connection for a client gone, after the body's end.
		b.done = true
	case n > 0:
		b.extendLocked()
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// extend sets the deadline for the next bytes.
func (b *body) extend() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extendLocked()
}

func (b *body) extendLocked() {
	if b.idle <= 0 {
		return
	}
	d := time.Now().Add(b.idle)
	if !b.end.IsZero() && b.end.Before(d) {
		d = b.end
	}
	// Not supported by every ResponseWriter (a recorder in tests); the listener's own
	// timeouts still apply then.
	_ = b.ctl.SetReadDeadline(d)
}

// Unread reports whether the body was not read to its end.
func (b *body) Unread() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.done
}

// closer sets Connection: close on an HTTP/1 answer written while the body is unread.
// Without it net/http reads up to 256 KiB of the body before sending the answer; a client
// that announced a body and never sends it would wait forever for a refusal. HTTP/2 needs
// none: an unread stream is reset, and Connection: close would end every other stream.
type closer struct {
	http.ResponseWriter
	b     *body
	h1    bool
	wrote bool
}

func (c *closer) WriteHeader(code int) {
	if !c.wrote && code >= 200 {
		c.wrote = true
		if c.h1 && c.b.Unread() {
			c.Header().Set("Connection", "close")
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closer) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (Flush, Hijack, deadlines).
func (c *closer) Unwrap() http.ResponseWriter { return c.ResponseWriter }
