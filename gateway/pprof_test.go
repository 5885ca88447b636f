package gateway_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
)

// servePprof runs a gateway whose config file sets ops_pprof to on, with a catch-all
// public route to a counting upstream, and returns it, its config file and the upstream.
func servePprof(t *testing.T, on bool) (s *gateway.Server, cfgPath string, up *upstream) {
	t.Helper()
	up = startUpstream(t, "api", nil)
	cfgPath = filepath.Join(t.TempDir(), "gateway.yaml")
	writePprofConfig(t, cfgPath, up, on)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err = gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), ConfigPath: cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitBound):
			t.Error("Serve did not return after shutdown")
		}
	})
	return s, cfgPath, up
}

func writePprofConfig(t *testing.T, path string, up *upstream, on bool) {
	t.Helper()
	onText := "false"
	if on {
		onText = "true"
	}
	text := `listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
ops_pprof: ` + onText + `
upstreams:
  api: {url: "` + up.srv.URL + `"}
routes:
  - {name: all, match: ["/"], upstream: api, public: true}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpsPprof checks net/http/pprof on both listeners in both states: with ops_pprof on,
// the ops listener serves the index, a named profile and cmdline, and the main listener
// never does (its /debug/pprof/ paths go through routing like any path, here to the
// upstream); with it off (the default), the ops listener answers 404. A reload switches it.
func TestOpsPprof(t *testing.T) {
	for _, on := range []bool{true, false} {
		name := "off"
		if on {
			name = "on"
		}
		t.Run(name, func(t *testing.T) {
			s, cfgPath, up := servePprof(t, on)
			mainURL, opsURL := "http://"+s.Addr().String(), "http://"+s.OpsAddr().String()
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
				a, err := httpGet(t, opsURL+p)
				if err != nil {
					t.Fatal(err)
				}
				isPprof := a.status == 200 && (strings.Contains(string(a.body), "goroutine") || strings.Contains(string(a.body), "pprof") ||
					strings.Contains(string(a.body), os.Args[0]))
				if on && !isPprof {
					t.Errorf("ops %s with ops_pprof on: %d %.200s", p, a.status, a.body)
				}
				if !on && a.status != 404 {
					t.Errorf("ops %s with ops_pprof off: %d, want 404", p, a.status)
				}
				before := up.count()
				m, err := httpGet(t, mainURL+p)
				if err != nil {
					t.Fatal(err)
				}
				// The main listener routes the path to the upstream like any other: the
				// answer is the upstream's, never a profile.
				if m.status != 200 || string(m.body) != "upstream api" || up.count() != before+1 {
					t.Errorf("main %s: %d %.200s (upstream hits %d -> %d); want the upstream's answer", p, m.status, m.body, before, up.count())
				}
			}
			// A reload flips it.
			writePprofConfig(t, cfgPath, up, !on)
			if err := s.Reload(); err != nil {
				t.Fatal(err)
			}
			a, err := httpGet(t, opsURL+"/debug/pprof/")
			if err != nil {
				t.Fatal(err)
			}
			if on && a.status != 404 {
				t.Errorf("after reload with ops_pprof off: %d, want 404", a.status)
			}
			if !on && a.status != 200 {
				t.Errorf("after reload with ops_pprof on: %d, want 200", a.status)
			}
		})
	}
}
