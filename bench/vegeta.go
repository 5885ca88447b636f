package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// vegetaLoader runs the vegeta library in this process: the fallback where wrk is not
// installed, and the only choice for a fixed rate (-rate), which wrk cannot pace.
type vegetaLoader struct{}

func (vegetaLoader) Name() string {
	v := "(unknown version)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tsenart/vegeta/v12" {
				v = d.Version
			}
		}
	}
	return "vegeta " + v + " (library, in the bench process)"
}

func (vegetaLoader) Run(ctx context.Context, l load, want int) (loadResult, error) {
	conns := max(1, l.Connections)
	opts := []func(*vegeta.Attacker){
		vegeta.Connections(conns),
		vegeta.Workers(uint64(conns)),
		vegeta.KeepAlive(true),
		vegeta.Timeout(10 * time.Second),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if l.Rate <= 0 {
		// Max rate: a closed loop of exactly conns workers, like wrk's -c.
		opts = append(opts, vegeta.MaxWorkers(uint64(conns)), vegeta.MaxConnections(conns))
	}
	atk := vegeta.NewAttacker(opts...)
	pacer := vegeta.ConstantPacer{Freq: int(l.Rate), Per: time.Second} // Freq 0: max rate
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: l.URL, Header: l.Header})
	if l.Tokens != nil {
		tr = tokenTargeter(l.URL, l.Header, l.Tokens)
	}

	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var (
		m         vegeta.Metrics
		errs      int64
		notWanted int64
	)
	start := time.Now()
	for res := range atk.Attack(tr, pacer, l.Duration, "bench") {
		m.Add(res)
		switch {
		case res.Code == 0: // no response at all; vegeta also sets Error for statuses >= 400
			errs++
		case int(res.Code) != want:
			notWanted++
		}
	}
	elapsed := time.Since(start)
	m.Close()
	if err := ctx.Err(); err != nil {
		return loadResult{}, fmt.Errorf("vegeta: %w", err)
	}
	r := loadResult{
		Requests:  int64(m.Requests) - errs,
		Elapsed:   elapsed,
		P50:       m.Latencies.P50,
		P99:       m.Latencies.P99,
		Errors:    errs,
		NotWanted: notWanted,
	}
	if elapsed > 0 {
		r.RPS = float64(r.Requests) / elapsed.Seconds()
	}
	return r, nil
}

// tokenTargeter sends GET url with header and, on each request, the pool's next token.
func tokenTargeter(url string, header http.Header, p *tokenPool) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		if t == nil {
			return vegeta.ErrNilTarget
		}
		h := header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+p.take())
		*t = vegeta.Target{Method: http.MethodGet, URL: url, Header: h}
		return nil
	}
}
