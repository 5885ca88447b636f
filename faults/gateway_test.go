//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// binPath is the authgate binary TestMain builds once; every case runs it.
var binPath string

// startBound is how long a gateway may take to serve and be ready.
const startBound = 30 * time.Second

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "authgate-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "authgate")
	build := exec.Command("go", "build", "-o", binPath, "github.com/authgate/authgate/cmd/authgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build authgate: %v\n", err)
		return 1
	}
	return m.Run()
}

// runCLI runs `authgate args...` and returns its stdout, failing t on an error.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("authgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// newKey returns a fresh well-formed API key from `authgate keys generate`.
func newKey(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(runCLI(t, "keys", "generate"))
}

// gatewayConfig is what differs between the configs of one case.
type gatewayConfig struct {
	RedisAddr    string // the replica's proxy, or Redis itself for the CLI
	RedisYAML    string // when set, the store.redis connection lines instead of RedisAddr's
	OnStoreError string
	RateMode     string
	Upstream     string // host:port
	SigningKey   string // shared by both replicas, so a token from one works on the other
	AdminKey     string
}

// Admin credentials of every case's bootstrap.
const (
	adminEmail    = "admin@example.com"
	adminPassword = "admin-password-123"
	userEmail     = "load@example.com"
	userPassword  = "load-password-123"
)

// yaml renders the replica configuration: the Redis store with its default timeouts, the
// built-in issuer, a bootstrap admin key and user, limits the load never reaches, and an
// API-key route, a JWT route and a public route.
func (c gatewayConfig) yaml() string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store:
  type: redis
  redis:
    %s
  on_store_error: %s
upstreams:
  api: {url: "http://%s"}
issuer:
  enabled: true
  signing_key_file: %q
bootstrap:
  admin_email: %q
  admin_password: %q
  admin_key: %q
rate_limits:
  mode: %s
  jwt: {requests: 1000000, per: 1m}
  api_key: {requests: 1000000, per: 1m}
  login: {requests: 100000, per: 1m}
  login_global: {requests: 100000, per: 1m}
  management: {requests: 100000, per: 1m}
  management_ip: {requests: 100000, per: 1m}
policy:
  roles:
    admin: ["*"]
    member: ["load:read"]
routes:
  - name: keyed
    match: ["GET /keyed/{$}"]
    upstream: api
    scopes: ["load:read"]
  - name: jwt
    match: ["GET /jwt/{$}"]
    upstream: api
    scopes: ["load:read"]
  - name: public
    match: ["GET /public/{$}"]
    upstream: api
    public: true
password_hashing: {queue: 16, max_wait: 30s}
log:
  level: info
  access_log: false
`, c.redisLines(), c.OnStoreError, c.Upstream, c.SigningKey, adminEmail, adminPassword, c.AdminKey, c.RateMode)
}

// redisLines is the connection part of store.redis.
func (c gatewayConfig) redisLines() string {
	if c.RedisYAML != "" {
		return c.RedisYAML
	}
	return fmt.Sprintf("addrs: [%q]", c.RedisAddr)
}

// writeConfig writes c to dir/name and returns the path.
func writeConfig(t *testing.T, dir, name string, c gatewayConfig) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// gatewayProc is one `authgate serve --config` process.
type gatewayProc struct {
	name   string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // cmd.Wait's result, valid once done is closed
	base   string
	ops    string
}

// startGateway runs the binary on cfgPath and waits until it serves and /readyz says 200.
// It is killed when t ends.
func startGateway(t *testing.T, name, cfgPath string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(binPath, "serve", "--config", cfgPath)
	g.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		if g.alive() {
			_ = g.cmd.Process.Kill()
		}
		<-g.done
	})
	deadline := time.Now().Add(startBound)
	for g.base == "" {
		if !g.alive() {
			t.Fatalf("gateway %s exited before serving: %v\nstdout:\n%s\nstderr:\n%s", name, g.err, g.stdout.String(), g.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s: no \"authgate serving\" line within %s\n%s", name, startBound, g.stdout.String())
		}
		if m := g.logLine("authgate serving"); m != nil {
			listen, _ := m["listen"].(string)
			ops, _ := m["ops_listen"].(string)
			g.base, g.ops = "http://"+listen, "http://"+ops
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		if code, _ := get(g.ops + "/readyz"); code == http.StatusOK {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s: /readyz not 200 within %s\n%s", name, startBound, g.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether the process is still running.
func (g *gatewayProc) alive() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// logLine returns the first JSON log line whose msg starts with prefix, or nil.
func (g *gatewayProc) logLine(prefix string) map[string]any {
	for _, l := range strings.Split(g.stdout.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
				return m
			}
		}
	}
	return nil
}

// panicked returns the first output line mentioning a panic, or "".
func (g *gatewayProc) panicked() string {
	for _, out := range []string{g.stderr.String(), g.stdout.String()} {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(strings.ToLower(l), "panic") {
				return l
			}
		}
	}
	return ""
}

// ctlClient makes the setup and control calls (not the measured load). Its timeout is
// generous: setup hashes passwords (argon2id) while other cases load the machine.
var ctlClient = &http.Client{Timeout: 60 * time.Second}

// get returns the status and body of GET url; status 0 on a transport error.
func get(url string) (int, string) {
	return call(http.MethodGet, url, "", nil)
}

// call sends one request with an optional Authorization value and JSON body.
func call(method, url, auth string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err.Error()
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctlClient.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err.Error()
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ctlClient.Do(req)
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

// setupBound bounds the retries of a setup or control call: one answered 503 (a store
// blip on a busy machine, or password hashing queued) is made again until then.
const setupBound = 30 * time.Second

// mustCall is call that fails t unless the status is want (or one of alsoOK, which a
// repeated call may get, e.g. 409 for a user the first try created), repeating it while the
// answer is a 503 or none, and decodes the JSON answer into out when out is not nil.
func mustCall(t *testing.T, want int, method, url, auth string, body, out any, alsoOK ...int) {
	t.Helper()
	deadline := time.Now().Add(setupBound)
	for tries := 0; ; tries++ {
		code, b := call(method, url, auth, body)
		if code == want || tries > 0 && slices.Contains(alsoOK, code) {
			if out != nil && code == want {
				if err := json.Unmarshal([]byte(b), out); err != nil {
					t.Fatalf("%s %s: %v in %s", method, url, err, b)
				}
			}
			return
		}
		if (code != 0 && code != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			t.Fatalf("%s %s: got %d %s, want %d", method, url, code, b, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mustLogin signs in, repeating the attempt while it fails, until setupBound.
func mustLogin(t *testing.T, base, email, password string) string {
	t.Helper()
	deadline := time.Now().Add(setupBound)
	for {
		tok, _, err := login(base, email, password)
		if err == nil {
			return tok
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errNoToken reports a login answer without an access token.
var errNoToken = errors.New("login answer has no access token")

// login signs in at the built-in issuer and returns the access token.
func login(base, email, password string) (string, int, error) {
	code, b := call(http.MethodPost, base+"/api/auth/login/", "", map[string]string{"email": email, "password": password})
	if code != http.StatusOK {
		return "", code, fmt.Errorf("login %s: got %d %s", email, code, b)
	}
	var ans struct {
		Access string `json:"access"`
	}
	if err := json.Unmarshal([]byte(b), &ans); err != nil {
		return "", code, fmt.Errorf("login %s: %w", email, err)
	}
	if ans.Access == "" {
		return "", code, errNoToken
	}
	return ans.Access, code, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
