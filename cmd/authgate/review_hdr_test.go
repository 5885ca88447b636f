package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// redisDemoConfig is a Redis-backed gateway with a protected route, on listeners the
// kernel picks at bind time (the "authgate serving" line names them).
func redisDemoConfig(redisAddr, upstreamURL, extra string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store:
  type: redis
  redis: {addrs: [%q], key_prefix: "review11:"}
upstreams:
  api: {url: %q}
routes:
  - {name: reports, match: ["GET /api/v1/reports/"], upstream: api, scopes: ["reports:read"]}
%s`, redisAddr, upstreamURL, extra)
}

// TestReview11_DemoKeyNotLeftInSharedStore: `serve --demo-upstream` on a Redis store
// leaves no admin key behind. Once that run has ended, a gateway on the same Redis
// refuses every key the run printed (401 invalid_api_key) and holds no key but its own.
func TestReview11_DemoKeyNotLeftInSharedStore(t *testing.T) {
	rs := redistest.Start(t)
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	// The demo upstream's address is in the file before the start (startDemoRun).
	r := startDemoRun(t, "authgate is ready", func(upstream string) *exec.Cmd {
		writeConfig(t, first, redisDemoConfig(rs.Addr(), "http://"+upstream, ""))
		cmd := exec.Command(binPath, "serve", "--config", first, "--demo-upstream", upstream)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		return cmd
	})
	stderr, stdout, done := r.stderr, r.stdout, r.done
	printed := strings.Join(stderr.all(), "\n")
	if !strings.Contains(printed, "no admin key for this run: store.type is redis") {
		t.Errorf("the run does not say why it printed no admin key")
	}
	keys := regexp.MustCompile(`sk_live_[A-Za-z0-9]+`).FindAllString(printed, -1)
	// The "authgate serving" log line comes on stdout, another pipe than the instructions:
	// it may be read after them, so it is looked for until it is there.
	firstAddr := ""
	serving := func() bool {
		for _, l := range stdout.all() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "authgate serving" {
				firstAddr, _ = m["listen"].(string)
			}
		}
		return firstAddr != ""
	}
	// The run is serving, and every key it printed works (is in the store) before it ends.
	eventually(t, "the first run's keys to work", func() bool {
		if !serving() {
			return false
		}
		for _, k := range append([]string{""}, keys...) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+firstAddr+"/api/v1/reports/", nil)
			if k != "" {
				req.Header.Set("X-API-Key", k)
			}
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if err != nil {
				return false
			}
			resp.Body.Close()
			if (k == "" && resp.StatusCode != http.StatusUnauthorized) || (k != "" && resp.StatusCode != http.StatusOK) {
				return false
			}
		}
		return true
	})
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("the first run did not stop within %s", bound)
	}

	// A later gateway on the same Redis, without the flag, with its own admin key.
	adminKey, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, nil)
	second := filepath.Join(dir, "second.yaml")
	writeConfig(t, second, redisDemoConfig(rs.Addr(), up.URL, fmt.Sprintf("bootstrap: {admin_key: %q}\n", adminKey)))
	g := startGateway(t, second)
	call := func(path, key string) (int, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+g.mainAddr+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	eventually(t, "the new gateway's admin key", func() bool {
		st, _ := call("/api/auth/api-keys/", adminKey)
		return st == http.StatusOK
	})
	for _, k := range keys {
		st, body := call("/api/v1/reports/", k)
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if st != http.StatusUnauthorized || e.Error != "invalid_api_key" {
			t.Errorf("key printed by the ended run: %d %s, want 401 invalid_api_key", st, body)
		}
	}
	st, body := call("/api/auth/api-keys/", adminKey)
	var list struct {
		Keys []struct {
			Name string `json:"name"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &list); err != nil || st != http.StatusOK {
		t.Fatalf("key list: %d %s", st, body)
	}
	if len(list.Keys) != 1 {
		t.Errorf("the store holds %d keys, want only the new gateway's own: %s", len(list.Keys), body)
	}
	if got := up.hits.Load(); got != 0 {
		t.Errorf("upstream saw %d requests, want 0", got)
	}
}
