package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// upstreamBody is the fixed answer of the benchmark upstream: about 100 bytes of JSON, so
// the proxies' cost is per request, not per byte.
var upstreamBody = []byte(`{"status":"ok","service":"bench-upstream","items":[1,2,3,4,5],"note":"fixed 100-byte body"}` + "\n")

// upstreamCmd is `bench upstream --listen ADDR`: a fixed 200 for every request.
func upstreamCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, newServer(*listen, upstreamHandler()))
}

// upstreamHandler answers every request 200 with upstreamBody.
func upstreamHandler() http.Handler {
	length := strconv.Itoa(len(upstreamBody))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(upstreamBody)
	})
}

// bareProxyCmd is `bench bareproxy --listen ADDR --upstream URL`: the reference
// (docs/benchmarks.md), an httputil.ReverseProxy whose Transport is http.DefaultTransport with a
// 256-connection idle pool and no other tuning.
func bareProxyCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := fs.String("upstream", "", "upstream URL, e.g. http://127.0.0.1:9000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("bareproxy: --upstream %q is not an absolute URL", *upstream)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		// The same forwarding work authgate does on a public route: target and X-Forwarded-*.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: t,
	}
	return serve(ctx, newServer(*listen, rp))
}

func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// serve runs srv until ctx is done, then drains it for at most two seconds.
func serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err // could not listen, or stopped on its own
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
