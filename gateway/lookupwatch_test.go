package gateway_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// lookupWatch counts key lookups as Redis executes them, seen through MONITOR: ByHash is
// one HMGET of a key record sent by a client (the HMGETs that scripts run are not
// lookups). Unlike the totals of INFO commandstats it tells lookups apart by record, so a
// test can leave out the gateway's own checks of the bootstrap admin key (ensureBootstrap
// runs one ByHash whenever an invalidation subscription comes back, at start too, and at
// every periodic check), which happen in the background at any time.
type lookupWatch struct {
	tb   testing.TB
	send func(msg string) error // sends ECHO msg and reads its answer

	mu      sync.Mutex
	records []string        // the record key of every lookup, in order
	marks   map[string]bool // the ECHO marks seen
	err     error           // why the monitor stopped, once it has
	n       int             // marks sent
}

// watchLookups starts a MONITOR connection to rs, closed at the end of the test.
func watchLookups(tb testing.TB, rs *redistest.Server) *lookupWatch {
	tb.Helper()
	mon, err := net.Dial("tcp", rs.Addr())
	if err != nil {
		tb.Fatalf("lookupWatch: dial: %v", err)
	}
	tb.Cleanup(func() { _ = mon.Close() })
	rd := bufio.NewReader(mon)
	if _, err := mon.Write([]byte("MONITOR\r\n")); err != nil {
		tb.Fatalf("lookupWatch: MONITOR: %v", err)
	}
	if line, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+OK" {
		tb.Fatalf("lookupWatch: MONITOR answered %q, %v", line, err)
	}
	w := &lookupWatch{tb: tb, marks: map[string]bool{}}
	go w.read(rd)

	// Marks go on a connection of their own: MONITOR takes its connection over.
	cmd, err := net.Dial("tcp", rs.Addr())
	if err != nil {
		tb.Fatalf("lookupWatch: dial: %v", err)
	}
	tb.Cleanup(func() { _ = cmd.Close() })
	crd := bufio.NewReader(cmd)
	var cmdMu sync.Mutex
	w.send = func(msg string) error {
		cmdMu.Lock()
		defer cmdMu.Unlock()
		if _, err := fmt.Fprintf(cmd, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(msg), msg); err != nil {
			return err
		}
		// The answer is a bulk string: its length line, then the string.
		for range 2 {
			if _, err := crd.ReadString('\n'); err != nil {
				return err
			}
		}
		return nil
	}
	return w
}

// read records the lookups and marks of the MONITOR stream until it ends. A line is
// `+<time> [<db> <client>] "<command>" "<arg>" ...`; the client of a script's commands
// is "lua".
func (w *lookupWatch) read(rd *bufio.Reader) {
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		client, args, ok := strings.Cut(strings.TrimSpace(line), "] ")
		if !ok {
			continue
		}
		f := strings.Fields(args)
		if len(f) < 2 {
			continue
		}
		cmd, arg := strings.ToLower(strings.Trim(f[0], `"`)), strings.Trim(f[1], `"`)
		w.mu.Lock()
		switch {
		case cmd == "echo":
			w.marks[arg] = true
		case cmd == "hmget" && !strings.HasSuffix(client, " lua") && strings.Contains(arg, "{apikeys}:k:"):
			w.records = append(w.records, arg)
		}
		w.mu.Unlock()
	}
}

// lookups returns how many key lookups Redis has executed so far, leaving out those of
// the records of the keys in skip (plaintexts): it sends a mark after them and waits for
// MONITOR to show it, so every command executed before the call is counted.
func (w *lookupWatch) lookups(skip ...string) int {
	w.tb.Helper()
	w.mu.Lock()
	w.n++
	mark := fmt.Sprintf("lookupwatch-%d", w.n)
	w.mu.Unlock()
	if err := w.send(mark); err != nil {
		w.tb.Fatalf("lookupWatch: ECHO: %v", err)
	}
	waitFor(w.tb, "MONITOR to show "+mark, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err != nil {
			w.tb.Fatalf("lookupWatch: MONITOR stopped: %v", w.err)
		}
		return w.marks[mark]
	})
	left := map[string]bool{}
	for _, k := range skip {
		h := apikey.NewHasher("").Hash(k)
		left[redisPrefix+"{apikeys}:k:"+hex.EncodeToString(h[:])] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.records {
		if !left[r] {
			n++
		}
	}
	return n
}
