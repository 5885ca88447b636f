package gateway

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// errBodyTooLarge is what a request body limited by limitBody returns once it has grown
// past the route's bound. The proxy then aborts the upstream request mid-body, so the
// upstream never receives a complete oversized body.
var errBodyTooLarge = errors.New("gateway: request body larger than max_body_bytes")

// limitBody bounds the request body on route rt to limit bytes (max_body_bytes, else
// proxy.max_body_bytes; -1: no bound). A Content-Length above it is refused at once with
// 413 request_too_large, before authentication and without reaching the upstream. A body
// of unknown length (chunked) is counted as it is forwarded: once it grows past the bound
// the forwarding is cut off mid-body, so the upstream never gets the whole body, and the
// client gets 413 request_too_large unless the upstream had already answered.
func (rt *route) limitBody(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if limit < 0 {
			return next
		}
		tooLarge := &httperr.Error{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Msg: "the request body is larger than the " + strconv.FormatInt(limit, 10) + " bytes route " + rt.cfg.Name + " accepts"}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := reqinfo.From(r.Context())
			if r.ContentLength > limit {
				info.Reject(w, tooLarge)
				return
			}
			if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
				// A known length within the bound: net/http reads no more than it.
				next.ServeHTTP(w, r)
				return
			}
			b := &limitedBody{rc: r.Body, left: limit}
			r2 := new(http.Request)
			*r2 = *r
			r2.Body = b
			cw := &cutWriter{ResponseWriter: w, b: b, before: w.Header().Clone()}
			next.ServeHTTP(cw, r2)
			if b.exceeded() && !cw.passed {
				// Whatever the proxy made of the aborted exchange (502 upstream_error) was
				// held back: the client learns what it did wrong.
				info.Reject(w, tooLarge)
			}
		})
	}
}

// limitedBody passes at most left bytes of rc, then fails with errBodyTooLarge. It reads
// one byte more than it passes, so a body of exactly the bound is not mistaken for a
// larger one. Read runs on the proxy transport's goroutine, so the state is locked.
type limitedBody struct {
	rc io.ReadCloser

	mu   sync.Mutex
	left int64
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.over = true
		return int(b.left), errBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

func (b *limitedBody) exceeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

// cutWriter holds back an answer written after the body grew past its bound (the
// proxy's 502 for the exchange it aborted), and restores the headers as they were before
// the proxy ran, so nothing of the upstream's leaks into the 413. An answer started before
// that (the upstream answered early) passes untouched.
type cutWriter struct {
	http.ResponseWriter
	b      *limitedBody
	before http.Header
	passed bool // an answer went through
	held   bool // an answer was held back
}

func (c *cutWriter) WriteHeader(code int) {
	if c.held {
		return
	}
	if !c.passed && c.b.exceeded() {
		c.held = true
		h := c.ResponseWriter.Header()
		clear(h)
		maps.Copy(h, c.before)
		return
	}
	if code >= 200 {
		c.passed = true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.passed && !c.held {
		c.WriteHeader(http.StatusOK)
	}
	if c.held {
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
