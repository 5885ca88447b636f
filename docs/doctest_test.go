// Package docs_test runs the shell examples of README.md and docs/*.md that carry a
// doctest marker (README.md, "Docs that run"; the runner is doctest_runner_test.go), so a
// doc that drifts from the gateway's behaviour fails `make test`.
package docs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// The floor of marked blocks, the count when examples were last added: removing markers
// (or breaking the marker syntax so that fewer blocks are found) fails the test instead
// of quietly testing less. Raise it with new examples; lower it only with one removed on
// purpose.
const (
	minRunBlocks = 35
	minRunFiles  = 11
)

// bound is how long one file's blocks, or the gateway's start, may take.
const bound = 2 * time.Minute

// binDir holds the authgate binary TestMain builds; the blocks find it on PATH.
var binDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "authgate-doctest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	// Without -race even under `go test -race`: the docs sign in with passwords, and an
	// argon2id hash takes several times longer in a race-enabled binary. The gateway's
	// process tests in cmd/authgate run a race-enabled binary.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "authgate"), "github.com/authgate/authgate/cmd/authgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build authgate: %v\n", err)
		return 1
	}
	return m.Run()
}

// docFiles returns README.md and docs/*.md, relative to the repository root (the
// parent of this package's directory), as they are named in failures.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join("..", "README.md")}, files...)
	for i, f := range files {
		files[i] = strings.TrimPrefix(filepath.ToSlash(f), "../")
	}
	return files
}

// TestDocsRun starts, for each Markdown file with marked blocks, what the docs assume —
// the gateway of `make run` (the embedded gateway.yaml, the demo upstream, the admin key
// and user it prints; its memory store is fresh for each file), and a redis-server when a
// block names 127.0.0.1:6379 — and runs the file's blocks as written, in one bash session.
//
// The session's environment: PATH with the authgate binary built from this tree first;
// HOME an empty directory; a working directory holding a copy of the repository's
// gateway.yaml; AUTHGATE_ADDR the gateway's URL; ADMIN_KEY, ADMIN_EMAIL and
// ADMIN_PASSWORD what `make run` printed. The documented addresses localhost:8080 and
// 127.0.0.1:8080 (the gateway), localhost:9090 and 127.0.0.1:9090 (its ops listener),
// 127.0.0.1:9000 (the demo upstream) and 127.0.0.1:6379 (Redis) are replaced, in blocks
// and in expected output, by the free ports the test used instead.
func TestDocsRun(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the docs' examples use it (apt-get install -y %s)", tool, tool)
		}
	}
	files := docFiles(t)
	docs := map[string][]block{}
	total, withBlocks := 0, 0
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := extract(f, src)
		if err != nil {
			t.Fatalf("doctest markers:\n%v", err)
		}
		n := 0
		for _, b := range blocks {
			if b.runnable() {
				n++
			}
		}
		if n > 0 {
			docs[f] = blocks
			total += n
			withBlocks++
		}
	}
	if total < minRunBlocks || withBlocks < minRunFiles {
		t.Fatalf("found %d marked run blocks in %d files, want at least %d in %d: were doctest markers removed?",
			total, withBlocks, minRunBlocks, minRunFiles)
	}
	t.Logf("%d marked run blocks in %d files", total, withBlocks)
	repoConfig, err := os.ReadFile(filepath.Join("..", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var run []string
	for _, f := range files {
		if _, ok := docs[f]; ok {
			run = append(run, f)
		}
	}
	next := launch()
	t.Cleanup(func() { // a gateway started for a file that did not run
		if next != nil {
			if r := <-next; r.g != nil {
				r.g.stop()
			}
		}
	})
	for i, f := range run {
		blocks := docs[f]
		t.Run(strings.ReplaceAll(f, "/", "_"), func(t *testing.T) {
			r := <-next
			next = nil
			if i+1 < len(run) {
				next = launch()
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			g := r.g
			t.Cleanup(g.stop)
			work := t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "gateway.yaml"), repoConfig, 0o600); err != nil {
				t.Fatal(err)
			}
			pairs := []string{
				"localhost:8080", g.addr, "127.0.0.1:8080", g.addr,
				"localhost:9090", g.ops, "127.0.0.1:9090", g.ops,
				"127.0.0.1:9000", g.upstream,
			}
			for _, b := range blocks {
				if strings.Contains(b.body, "127.0.0.1:6379") {
					pairs = append(pairs, "127.0.0.1:6379", redistest.Start(t).Addr())
					break
				}
			}
			// curl as at a terminal: no progress meter mixed into the output (curl shows
			// none when its output is a terminal), and bounded.
			home := t.TempDir()
			if err := os.WriteFile(filepath.Join(home, ".curlrc"), []byte("no-progress-meter\nmax-time = 60\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := session{
				dir: work,
				env: []string{
					"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
					"HOME=" + home, "TMPDIR=" + t.TempDir(), "LANG=C.UTF-8",
					"AUTHGATE_ADDR=http://" + g.addr,
					"ADMIN_KEY=" + g.adminKey, "ADMIN_EMAIL=" + g.adminEmail, "ADMIN_PASSWORD=" + g.adminPassword,
				},
				subst:   strings.NewReplacer(pairs...),
				timeout: bound,
			}
			for _, msg := range s.run(context.Background(), blocks) {
				t.Error(msg)
			}
			if t.Failed() {
				log := g.log.String()
				if len(log) > 8<<10 {
					log = "…" + log[len(log)-8<<10:]
				}
				t.Logf("gateway log:\n%s", log)
			}
		})
	}
}

// demo is a running `authgate serve --demo-upstream`, as `make run` starts it.
type demo struct {
	addr, ops, upstream                 string
	adminKey, adminEmail, adminPassword string
	log                                 *syncBuffer
	stop                                func()
}

var (
	adminKeyRE  = regexp.MustCompile(`admin key \(this run only\): (\S+)`)
	adminUserRE = regexp.MustCompile(`admin user \(this run only\): ([^\s,]+), password (\S+)`)
)

// launched is a demo being started in the background, or the error that stopped it.
type launched chan launchResult

type launchResult struct {
	g   *demo
	err error
}

// launch starts a demo gateway in the background: the next file's gateway starts (an
// argon2id hash for its admin user, most of its start) while the current file's blocks
// run, so at most two run at once.
func launch() launched {
	ch := make(launched, 1)
	go func() {
		g, err := startDemo()
		ch <- launchResult{g, err}
	}()
	return ch
}

// demoStartAttempts bounds the starts of a demo whose upstream port was taken.
const demoStartAttempts = 5

// startDemo starts the built binary as `make run` does and waits for the instructions it
// prints when ready. stop kills it and removes its directories.
//
// The gateway's listeners bind 127.0.0.1:0 and their ports are read from its "authgate
// serving" line: a port picked free beforehand could be taken by a parallel test before
// the process binds it. The demo upstream is the exception, since AUTHGATE_UPSTREAM names
// it before the start: its port is picked free, and a start that fails because it was
// taken in between is retried on another port, up to demoStartAttempts times.
func startDemo() (*demo, error) {
	for attempt := 1; ; attempt++ {
		g, taken, err := startDemoOnce()
		if !taken || attempt == demoStartAttempts {
			return g, err
		}
	}
}

// startDemoOnce is one attempt of startDemo; taken reports that it failed because the
// demo upstream's port was taken before the process bound it.
func startDemoOnce() (g *demo, taken bool, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, false, err
	}
	upstream := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "authgate-doctest-demo-")
	if err != nil {
		return nil, false, err
	}
	g = &demo{upstream: upstream, log: &syncBuffer{}}
	cmd := exec.Command(filepath.Join(binDir, "authgate"), "serve", "--demo-upstream", g.upstream)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir,
		"AUTHGATE_LISTEN=127.0.0.1:0", "AUTHGATE_OPS_LISTEN=127.0.0.1:0", "AUTHGATE_UPSTREAM=http://" + g.upstream}
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, false, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	g.stop = func() {
		_ = cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(bound)
	for !strings.Contains(g.log.String(), "web console: ") {
		select {
		case <-exited:
			g.stop()
			out := g.log.String()
			taken := strings.Contains(out, "demo upstream: listen tcp "+g.upstream) && strings.Contains(out, "address already in use")
			return nil, taken, fmt.Errorf("make run's gateway exited:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, false, fmt.Errorf("make run's gateway printed no instructions within %s:\n%s", bound, g.log.String())
		}
	}
	out := g.log.String()
	k, u := adminKeyRE.FindStringSubmatch(out), adminUserRE.FindStringSubmatch(out)
	if k == nil || u == nil {
		g.stop()
		return nil, false, fmt.Errorf("make run's gateway printed no admin key or admin user:\n%s", out)
	}
	g.adminKey, g.adminEmail, g.adminPassword = k[1], u[1], u[2]
	// The serving line precedes the instructions: the same process writes both, in order.
	for _, l := range strings.Split(out, "\n") {
		var m struct {
			Msg       string `json:"msg"`
			Listen    string `json:"listen"`
			OpsListen string `json:"ops_listen"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "authgate serving" {
			g.addr, g.ops = m.Listen, m.OpsListen
		}
	}
	if g.addr == "" || g.ops == "" {
		g.stop()
		return nil, false, fmt.Errorf("make run's gateway logged no \"authgate serving\" line with its listeners:\n%s", out)
	}
	return g, false, nil
}

// syncBuffer is an io.Writer that a process and the test read at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
