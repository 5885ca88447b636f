package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUncachedRowsTokens mints each -uncached row's pool and checks that its tokens are
// distinct, are the lines of its token file, and each opens the row's route on a gateway
// built in process from the row's own config, every one a verified-token cache miss.
func TestUncachedRowsTokens(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	rows := 0
	for _, sc := range scenarios {
		if !sc.distinctTokens {
			continue
		}
		rows++
		t.Run(sc.name, func(t *testing.T) {
			if sc.jwtAlg == "" || sc.ref == "" || sc.name != sc.ref+"-uncached" {
				t.Fatalf("jwtAlg %q, ref %q: want a JWT row compared with its cached twin %s", sc.jwtAlg, sc.ref, strings.TrimSuffix(sc.name, "-uncached"))
			}
			twin := scenarios[slices.IndexFunc(scenarios, func(o scenario) bool { return o.name == sc.ref })]
			if twin.jwtAlg != sc.jwtAlg || twin.gateway != sc.gateway || twin.path != sc.path || twin.distinctTokens {
				t.Errorf("twin %s differs in more than the distinct tokens", twin.name)
			}
			withCred, err := sc.withCredential(keys, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if withCred.header.Get("Authorization") != "" {
				t.Errorf("header %v: an -uncached row's tokens come from its pool alone", withCred.header)
			}

			dir := t.TempDir()
			p, err := mintPool(t.Context(), keys, sc.jwtAlg, time.Now(), time.Hour, n, dir, sc.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.tokens) != n {
				t.Fatalf("%d tokens, want %d", len(p.tokens), n)
			}
			distinct := map[string]bool{p.probe: true}
			for _, tok := range p.tokens {
				distinct[tok] = true
			}
			if len(distinct) != n+1 {
				t.Errorf("%d distinct tokens among %d and the probe's", len(distinct), n+1)
			}
			b, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(p.tokens, "\n") + "\n"; string(b) != want {
				t.Error("token file is not the tokens, one a line")
			}
			if b, err := os.ReadFile(p.script); err != nil || string(b) != wrkTokenScript {
				t.Errorf("wrk script: %v, want wrkTokenScript", err)
			}

			s, up, reg := benchGateway(t, sc, keys)
			for i, tok := range append(slices.Clone(p.tokens), p.probe) {
				status, body, _ := get(t, s, sc.path, bearerHeader(tok))
				if status != sc.want || !bytes.Equal(body, upstreamBody) {
					t.Fatalf("token %d: %d %q, want %d and the upstream's body", i, status, body, sc.want)
				}
			}
			if got := cacheLookups(t, reg); got["miss"] != n+1 || got["hit"] != 0 {
				t.Errorf("credential cache lookups %v, want %d misses and no hit", got, n+1)
			}
			methods, subjects := up.seen()
			if len(methods) != n+1 || slices.ContainsFunc(methods, func(m string) bool { return m != "jwt" }) ||
				slices.ContainsFunc(subjects, func(s string) bool { return s != "bench" }) {
				t.Errorf("upstream saw %d requests, want %d, all as JWT subject bench", len(methods), n+1)
			}
		})
	}
	if rows != 2 {
		t.Errorf("%d -uncached rows, want 2 (HS256 and EdDSA)", rows)
	}
}

func TestMintPoolErrors(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mintPool(t.Context(), keys, algEdDSA, time.Now(), time.Hour, 0, t.TempDir(), "x"); err == nil {
		t.Error("0 tokens: no error")
	}
	if _, err := mintPool(t.Context(), keys, "RS256", time.Now(), time.Hour, 10, t.TempDir(), "x"); err == nil || !strings.Contains(err.Error(), `"RS256"`) {
		t.Errorf("RS256: err = %v, want the minting error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := mintPool(ctx, keys, algEdDSA, time.Now(), time.Hour, 10, t.TempDir(), "x"); err == nil {
		t.Error("cancelled: no error")
	}
	if _, err := mintPool(t.Context(), keys, algEdDSA, time.Now(), time.Hour, 10, t.TempDir()+"/missing", "x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: err = %v, want os.ErrNotExist", err)
	}
}

// TestTokenPoolCursor: take cycles through the tokens in order, and wrk's start carries on
// where the previous run stopped.
func TestTokenPoolCursor(t *testing.T) {
	p, err := newTokenPool([]string{"a", "b", "c"}, "probe", t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 7 {
		got = append(got, p.take())
	}
	if strings.Join(got, "") != "abcabca" {
		t.Errorf("take x7 = %q, want abcabca", got)
	}
	if p.start() != 1 {
		t.Errorf("start = %d, want 1", p.start())
	}
	p.advance(2, 2)  // two threads, the busiest sent 2
	p.advance(-5, 1) // never backwards
	if p.start() != 2 {
		t.Errorf("start after advance(2, 2) = %d, want 2", p.start())
	}
	if _, err := newTokenPool(nil, "probe", t.TempDir(), "x"); err == nil {
		t.Error("no tokens: no error")
	}
}

// authSeen is an upstream that records every Authorization header it gets.
type authSeen struct {
	mu   sync.Mutex
	seen []string
}

func (a *authSeen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	w.Header().Set("Content-Length", "2")
	_, _ = w.Write([]byte("ok"))
}

// checkDistinct checks that the server saw only the pool's tokens, none twice, from
// index first on (give or take one per thread), and at least min of them.
func checkDistinct(t *testing.T, a *authSeen, p *tokenPool, first, threads, atLeast int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) < atLeast {
		t.Fatalf("server saw %d requests, want at least %d", len(a.seen), atLeast)
	}
	count := map[string]int{}
	lowest := len(p.tokens)
	for _, h := range a.seen {
		tok, ok := strings.CutPrefix(h, "Bearer tok-")
		i, err := strconv.Atoi(tok)
		if !ok || err != nil || i < 0 || i >= len(p.tokens) {
			t.Fatalf("Authorization %q: not one of the pool's tokens", h)
		}
		count[h]++
		lowest = min(lowest, i)
	}
	if len(count) != len(a.seen) {
		t.Errorf("%d distinct tokens in %d requests, want no repeat", len(count), len(a.seen))
	}
	if lowest < first || lowest > first+2*threads {
		t.Errorf("lowest token sent %d, want the run to start at %d", lowest, first)
	}
}

// fakePool is a pool of n tokens "tok-0"..., which the load tools cannot tell from JWTs.
func fakePool(t *testing.T, n int) *tokenPool {
	t.Helper()
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fmt.Sprintf("tok-%d", i)
	}
	p, err := newTokenPool(toks, "probe", t.TempDir(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWrkTokenScript runs wrk with the generated script twice for a second and checks
// that the server got the pool's tokens, none twice in either run or across the two (the
// pool is larger than the requests), the first run starting at the cursor, and that each
// run moved the cursor past what its busiest thread sent.
func TestWrkTokenScript(t *testing.T) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("!!! SKIPPED: wrk is not installed, so the -uncached rows' wrk script is untested (apt-get install -y wrk)")
	}
	a := &authSeen{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	p := fakePool(t, 400000)
	const first, threads, conns = 1000, 2, 4
	p.advance(first, 1)
	w := newWrk(t.Context(), path)
	var total int64
	for run := range 2 {
		from := p.start()
		res, err := w.Run(t.Context(), load{URL: srv.URL + "/x", Duration: time.Second, Connections: conns, Threads: threads, Tokens: p}, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests < 100 || res.NotWanted != 0 || res.Errors != 0 {
			t.Fatalf("run %d: wrk %+v, want at least 100 good requests", run+1, res)
		}
		total += res.Requests
		moved := p.start() - from
		if moved%threads != 0 || moved < res.Requests || moved > threads*(res.Requests+conns+1) {
			t.Errorf("run %d: cursor moved %d for %d requests, want threads x the busiest thread's tokens", run+1, moved, res.Requests)
		}
	}
	checkDistinct(t, a, p, first, threads, int(total))
}

// TestVegetaTokens: the vegeta fallback sends the pool's tokens in turn, each once.
func TestVegetaTokens(t *testing.T) {
	a := &authSeen{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	p := fakePool(t, 10000)
	p.advance(500, 1)
	res, err := vegetaLoader{}.Run(t.Context(), load{URL: srv.URL + "/x", Duration: time.Second, Connections: 4, Rate: 500, Tokens: p}, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 100 || res.NotWanted != 0 || res.Errors != 0 {
		t.Fatalf("vegeta: %+v, want at least 100 good requests", res)
	}
	checkDistinct(t, a, p, 500, 0, int(res.Requests))
}
