package gateway_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

func reloadConfig(routes string) string {
	return gatewayHeader + `
upstreams:
  api: {url: "${UP_api}", timeout: 5s}
routes:
` + routes
}

var (
	configV1 = reloadConfig(`  - {name: stable, match: ["GET /stable/"], upstream: api, public: true}
  - {name: old,    match: ["GET /old/"],    upstream: api, public: true}
`)
	configV2 = reloadConfig(`  - {name: stable, match: ["GET /stable/"], upstream: api, public: true}
  - {name: new,    match: ["GET /new/"],    upstream: api, public: true}
`)
	// badConfigs are refused for different reasons: YAML, an unknown field, a conflict.
	badConfigs = []string{
		"routes: [unclosed\n",
		reloadConfig(`  - {name: stable, match: ["GET /stable/"], upstream: api, public: true, scopez: [x]}
`),
		reloadConfig(`  - {name: stable, match: ["GET /stable/"], upstream: api, public: true}
  - {name: clash,  match: ["GET /stable/"], upstream: api, public: true}
`),
	}
)

// newReloadable writes content to a config file in a temp dir and builds a gateway on it.
func newReloadable(t *testing.T, content string) (*harness, string) {
	t.Helper()
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, content)
	getenv := env(ups, nil)
	cfg, err := config.Load(path, getenv)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	reg := prometheus.NewRegistry()
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: reg, ConfigPath: path, Getenv: getenv})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return &harness{t: t, s: s, reg: reg, ups: ups}, path
}

func status(h *harness, target string) int {
	rec := httptest.NewRecorder()
	h.s.ServeHTTP(rec, httptest.NewRequest("GET", "http://gw.example"+target, nil))
	return rec.Code
}

func TestReload(t *testing.T) {
	h, path := newReloadable(t, configV1)
	if got := status(h, "/old/x"); got != 200 {
		t.Fatalf("before reload: /old/x = %d, want 200", got)
	}
	if got := status(h, "/new/x"); got != 404 {
		t.Fatalf("before reload: /new/x = %d, want 404", got)
	}

	writeFile(t, path, configV2)
	if err := h.s.Reload(); err != nil {
		t.Fatalf("Reload of a good file: %v", err)
	}
	if got := status(h, "/new/x"); got != 200 {
		t.Errorf("after reload: /new/x = %d, want 200", got)
	}
	if got := status(h, "/old/x"); got != 404 {
		t.Errorf("after reload: /old/x = %d, want 404", got)
	}
	if names := routeNames(h.s); names != "stable,new" {
		t.Errorf("Config().Routes = %s, want stable,new", names)
	}

	for i, bad := range badConfigs {
		writeFile(t, path, bad)
		err := h.s.Reload()
		if err == nil {
			t.Fatalf("Reload of bad file %d: nil, want an error", i)
		}
		if !strings.Contains(err.Error(), "gateway.yaml") {
			t.Errorf("Reload error %q does not name the file", err)
		}
		if got := status(h, "/new/x"); got != 200 {
			t.Errorf("after bad reload %d: /new/x = %d, want the old config still serving", i, got)
		}
		if names := routeNames(h.s); names != "stable,new" {
			t.Errorf("after bad reload %d: routes = %s, want stable,new", i, names)
		}
	}

	want := fmt.Sprintf(`
# HELP authgate_config_reloads_total Configuration reloads by result (success, failure).
# TYPE authgate_config_reloads_total counter
authgate_config_reloads_total{result="failure"} %d
authgate_config_reloads_total{result="success"} 1
`, len(badConfigs))
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "authgate_config_reloads_total"); err != nil {
		t.Error(err)
	}
}

func TestReloadOneBadFileCountsOneFailure(t *testing.T) {
	h, path := newReloadable(t, configV1)
	writeFile(t, path, badConfigs[0])
	if err := h.s.Reload(); err == nil {
		t.Fatal("Reload of a bad file: nil, want an error")
	}
	if got := status(h, "/old/x"); got != 200 {
		t.Errorf("/old/x = %d, want 200 from the old config", got)
	}
	if v := metricValue(t, h.reg, "authgate_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf(`authgate_config_reloads_total{result="failure"} = %v, want 1`, v)
	}
	if v := metricValue(t, h.reg, "authgate_config_reloads_total", map[string]string{"result": "success"}); v != 0 {
		t.Errorf(`authgate_config_reloads_total{result="success"} = %v, want 0`, v)
	}
}

func TestReloadFileGone(t *testing.T) {
	h, path := newReloadable(t, configV1)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Reload(); err == nil {
		t.Fatal("Reload of a missing file: nil, want an error")
	}
	if got := status(h, "/old/x"); got != 200 {
		t.Errorf("/old/x = %d, want 200 from the old config", got)
	}
}

func TestReloadNeedsConfigPath(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: r, match: ["/r/"], upstream: api, public: true}
`, "api")
	if err := h.s.Reload(); err == nil {
		t.Error("Reload without ConfigPath: nil, want an error")
	}
}

// TestReloadUnderLoad: requests keep being answered by a complete configuration while
// good and bad files alternate.
func TestReloadUnderLoad(t *testing.T) {
	h, path := newReloadable(t, configV1)
	api := h.ups["api"]
	const (
		workers = 4
		reloads = 20
		// Each worker runs until the reloads are done, at least minPer and at most maxPer
		// requests: bounded, and overlapping the reloads however fast they are.
		minPer, maxPer = 20, 5000
	)
	var (
		wg       sync.WaitGroup
		done     atomic.Bool
		failed   atomic.Int64
		served   atomic.Int64
		firstBad atomic.Value
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxPer && (i < minPer || !done.Load()); i++ {
				rec := httptest.NewRecorder()
				h.s.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("http://gw.example/stable/%d", i), nil))
				served.Add(1)
				if rec.Code != http.StatusOK {
					failed.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %s", rec.Code, rec.Body))
				}
			}
		}()
	}
	var reloadErrs, reloadOKs int
	for i := 0; i < reloads; i++ {
		content := badConfigs[i/2%len(badConfigs)]
		if i%2 == 0 {
			content = []string{configV1, configV2}[i/2%2]
		}
		writeFile(t, path, content)
		if err := h.s.Reload(); err != nil {
			reloadErrs++
		} else {
			reloadOKs++
		}
	}
	done.Store(true)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", n, served.Load(), firstBad.Load())
	}
	if got, want := int64(api.count()), served.Load(); got != want {
		t.Errorf("upstream saw %d requests, want %d", got, want)
	}
	if reloadOKs != reloads/2 || reloadErrs != reloads/2 {
		t.Errorf("reloads: %d ok, %d refused; want %d each", reloadOKs, reloadErrs, reloads/2)
	}
	if v := metricValue(t, h.reg, "authgate_config_reloads_total", map[string]string{"result": "failure"}); v != reloads/2 {
		t.Errorf(`reloads_total{result="failure"} = %v, want %d`, v, reloads/2)
	}
	if v := metricValue(t, h.reg, "authgate_config_reloads_total", map[string]string{"result": "success"}); v != reloads/2 {
		t.Errorf(`reloads_total{result="success"} = %v, want %d`, v, reloads/2)
	}
}

func routeNames(s *gateway.Server) string {
	var names []string
	for _, r := range s.Config().Routes {
		names = append(names, r.Name)
	}
	return strings.Join(names, ",")
}

// TestReloadRestartWarningsAgainstRunningValues: a reload that changes a restart-only
// setting warns; one that puts it back to what the process runs does not.
func TestReloadRestartWarningsAgainstRunningValues(t *testing.T) {
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, configV1)
	getenv := env(ups, nil)
	cfg, err := config.Load(path, getenv)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	logs := &lockedBuffer{}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: prometheus.NewRegistry(),
		ConfigPath: path, Getenv: getenv})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	warnings := func() int { return strings.Count(logs.String(), "config change needs a restart") }

	writeFile(t, path, strings.Replace(configV1, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, 1))
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := warnings(); n != 1 || !strings.Contains(logs.String(), `"field":"listen"`) {
		t.Fatalf("after changing listen: %d warnings, want 1 for listen:\n%s", n, logs)
	}
	writeFile(t, path, configV1) // back to what the process runs
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := warnings(); n != 1 {
		t.Fatalf("after putting listen back: %d warnings in all, want still 1:\n%s", n, logs)
	}
}
