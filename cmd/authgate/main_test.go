package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the authgate binary TestMain builds; the process tests run it.
var binPath string

// raceBuild is set by race_test.go: the binary under test is then race-enabled too, and a
// data race in the gateway fails the process tests through its exit code (66).
var raceBuild bool

// bound is how long any awaited event (startup, reload, drain, exit) may take.
const bound = 30 * time.Second

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "authgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "authgate")
	args := []string{"build", "-o", binPath}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build authgate: %v\n", err)
		return 1
	}
	return m.Run()
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeConfig(t, good, "upstreams:\n  api: {url: \"http://127.0.0.1:9000\"}\n")
	bad := filepath.Join(dir, "bad.yaml")
	writeConfig(t, bad, "listen: \":8080\"\nops_listen: \":8080\"\nlistne: x\n")
	tests := []struct {
		name       string
		args       []string
		wantErr    string // "" = success
		wantStdout string // substring
		wantStderr string // substring
	}{
		{"version", []string{"version"}, "", "authgate dev\n", ""},
		{"--version", []string{"--version"}, "", "authgate dev\n", ""},
		{"help", []string{"help"}, "", "usage: authgate <command>", ""},
		{"no command", nil, "no command", "", "usage: authgate <command>"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "", "usage: authgate <command>"},
		{"config without subcommand", []string{"config"}, "unknown config command", "", "usage:"},
		{"unknown config subcommand", []string{"config", "check"}, "unknown config command", "", "usage:"},
		{"config validate good", []string{"config", "validate", "--config", good}, "", good + ": ok\n", ""},
		// Both problems in one run: the unknown field and the listeners that collide.
		{"config validate bad", []string{"config", "validate", "--config", bad}, bad + ": 2 problem(s)", "",
			"bad.yaml:2: ops_listen: must differ from listen (\":8080\"): metrics are never served on the main listener\n" +
				`bad.yaml:3: listne: unknown field (did you mean "listen"?)`},
		{"config validate missing", []string{"config", "validate", "--config", filepath.Join(dir, "nope.yaml")}, "no such file", "", ""},
		{"config validate bad flag", []string{"config", "validate", "--cfg", good}, "flag provided but not defined", "", "-cfg"},
		{"serve bad config", []string{"serve", "--config", bad}, "unknown field", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("got stdout %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("got stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestConfigValidateBinary runs `authgate config validate` as a user does and checks the
// exit code and that every problem is on stderr, one per line, in file order.
func TestConfigValidateBinary(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, good, `listen: "${LISTEN:-:8080}"
upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - name: health
    match: ["GET /health"]
    upstream: api
    public: true
`)
	bad := filepath.Join(dir, "broken.yaml")
	writeConfig(t, bad, `listen: ":8080"
ops_listen: ":8080"
upstreams:
  api: {url: "ftp://127.0.0.1:9000"}
routes:
  - name: health
    match: ["GET /health"]
    upstream: apii
    public: true
    scopes: ["x"]
`)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string   // regular expression for all of stdout
		wantStderr []string // exact lines
	}{
		// A build from a tagged or committed tree carries its VCS version, else "dev".
		{"version", []string{"version"}, 0, `^authgate (dev|v\S+)\ncommit: \S+\nbuilt:  .+\n$`, nil},
		{"good file", []string{"config", "validate", "--config", good}, 0, "^" + regexp.QuoteMeta(good+": ok\n") + "$", nil},
		{"bad file", []string{"config", "validate", "--config", bad}, 1, "^$", []string{
			`broken.yaml:2: ops_listen: must differ from listen (":8080"): metrics are never served on the main listener`,
			`broken.yaml:4: upstreams.api.url: want an http:// or https:// URL with a host, got "ftp://127.0.0.1:9000"`,
			`broken.yaml:8: routes[0].upstream: unknown upstream "apii" (did you mean "api"?)`,
			`broken.yaml:9: routes[0].public: a public route cannot require scopes`,
			`authgate: ` + bad + `: 4 problem(s)`,
		}},
		{"unknown command", []string{"frobnicate"}, 1, "^$", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := stdout.String(); !regexp.MustCompile(tt.wantStdout).MatchString(got) {
				t.Errorf("got stdout %q, want it to match %q", got, tt.wantStdout)
			}
			if tt.wantStderr != nil {
				if got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); !equalLines(got, tt.wantStderr) {
					t.Errorf("got stderr\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantStderr, "\n  "))
				}
			}
		})
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds, failing the test after bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		<-tick.C
	}
}

// gatewayProc is one `authgate serve` process.
type gatewayProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	logs     *lineLog
	stderr   *lineLog
	done     chan struct{} // closed when the process has exited
	exitCode int           // valid after done
	mainAddr string
	opsAddr  string
	scheme   string
}

// startGateway runs `authgate serve --config path`, with env added to a minimal
// environment, and waits for its "authgate serving" log line, which names the bound
// listeners.
func startGateway(t *testing.T, path string, env ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{t: t, logs: &lineLog{}, stderr: &lineLog{}, done: make(chan struct{})}
	args := []string{"serve", "--config", path}
	if path == "" { // no flag: $AUTHGATE_CONFIG in env, or the embedded demo config
		args = args[:1]
	}
	g.cmd = exec.Command(binPath, args...)
	g.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := g.cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			g.exitCode = exitErr.ExitCode()
		} else if err != nil {
			g.exitCode = -1
		}
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("authgate stdout:\n%s\nauthgate stderr:\n%s", strings.Join(g.logs.all(), "\n"), strings.Join(g.stderr.all(), "\n"))
		}
	})
	eventually(t, "authgate serving log line", func() bool {
		select {
		case <-g.done:
			t.Fatalf("authgate exited with code %d before serving; stderr:\n%s", g.exitCode, strings.Join(g.stderr.all(), "\n"))
		default:
		}
		return g.serving()
	})
	return g
}

// serving reports whether the process has logged its "authgate serving" line and, once
// it has, sets the addresses its listeners are bound to from it. The test configs listen
// on 127.0.0.1:0, so the kernel picks the ports at bind time: a port picked free before
// the start could be taken by a parallel test before the process binds it.
func (g *gatewayProc) serving() bool {
	m := g.logLine("authgate serving")
	if m == nil {
		return false
	}
	g.mainAddr, _ = m["listen"].(string)
	g.opsAddr, _ = m["ops_listen"].(string)
	g.scheme, _ = m["scheme"].(string)
	return true
}

// demoRun is an `authgate serve --demo-upstream ADDR` process.
type demoRun struct {
	cmd            *exec.Cmd
	stdout, stderr *lineLog
	done           chan struct{} // closed when the process has exited
	upstream       string        // ADDR: the demo upstream's address
}

// demoStartAttempts bounds the starts of a demo run whose upstream port was taken.
const demoStartAttempts = 5

// startDemoRun starts the command newCmd returns for a demo upstream address (it runs
// `serve --demo-upstream` on it) and waits until its stderr contains ready.
//
// The demo upstream is the one listener whose address cannot be chosen at bind time: the
// gateway's configuration names it (the upstream URL) before the process starts. So its
// port is picked free beforehand, and since a parallel test may take that port before the
// process binds it, a start that fails with "address already in use" is retried on
// another port, up to demoStartAttempts times. The gateway's own listeners are
// 127.0.0.1:0 in every caller.
func startDemoRun(t *testing.T, ready string, newCmd func(upstream string) *exec.Cmd) *demoRun {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r := &demoRun{stdout: &lineLog{}, stderr: &lineLog{}, done: make(chan struct{}), upstream: ln.Addr().String()}
		ln.Close()
		r.cmd = newCmd(r.upstream)
		r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = r.cmd.Wait(); close(r.done) }()
		exited := false
		eventually(t, "the demo run's "+strconv.Quote(ready), func() bool {
			select {
			case <-r.done:
				exited = true
				return true
			default:
			}
			return strings.Contains(strings.Join(r.stderr.all(), "\n"), ready)
		})
		if !exited {
			t.Cleanup(func() {
				select {
				case <-r.done:
				default:
					_ = r.cmd.Process.Kill()
					<-r.done
				}
				if t.Failed() {
					t.Logf("demo run stderr:\n%s\nstdout:\n%s", strings.Join(r.stderr.all(), "\n"), strings.Join(r.stdout.all(), "\n"))
				}
			})
			return r
		}
		stderr := strings.Join(r.stderr.all(), "\n")
		taken := strings.Contains(stderr, "demo upstream: listen tcp "+r.upstream) && strings.Contains(stderr, "address already in use")
		if !taken || attempt == demoStartAttempts {
			t.Fatalf("demo run (attempt %d, upstream %s) exited before %q; stderr:\n%s\nstdout:\n%s",
				attempt, r.upstream, ready, stderr, strings.Join(r.stdout.all(), "\n"))
		}
		t.Logf("demo upstream %s was taken before the process bound it; starting again on another port", r.upstream)
	}
}

// logLine returns the first JSON log line whose msg starts with prefix, or nil.
func (g *gatewayProc) logLine(prefix string) map[string]any {
	for _, l := range g.logs.all() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
				return m
			}
		}
	}
	return nil
}

func (g *gatewayProc) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (g *gatewayProc) wait() int {
	g.t.Helper()
	select {
	case <-g.done:
		return g.exitCode
	case <-time.After(bound):
		g.t.Fatalf("authgate did not exit within %s", bound)
		return 0
	}
}

// get requests path on the main listener and returns the status and body; status 0
// means the request failed.
func (g *gatewayProc) get(path string) (int, string) {
	return httpGet(http.DefaultClient, "http://"+g.mainAddr+path)
}

// ops requests path on the ops listener.
func (g *gatewayProc) ops(path string) (int, string) {
	return httpGet(http.DefaultClient, "http://"+g.opsAddr+path)
}

func httpGet(c *http.Client, url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample named exactly series (name and labels) on
// /metrics, or 0 when it is absent.
func (g *gatewayProc) metric(series string) float64 {
	g.t.Helper()
	code, body := g.ops("/metrics")
	if code != http.StatusOK {
		g.t.Fatalf("GET /metrics: got %d %s, want 200", code, body)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				g.t.Fatalf("metric %s: %v", l, err)
			}
			return f
		}
	}
	return 0
}

// lineLog collects a process's output by line; safe for concurrent use.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *lineLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
