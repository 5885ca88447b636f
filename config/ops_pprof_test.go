package config_test

import (
	"testing"

	"github.com/authgate/authgate/config"
)

// TestOpsPprof: ops_pprof is off by default and turned on by the file.
func TestOpsPprof(t *testing.T) {
	base := "upstreams: {api: {url: \"http://127.0.0.1:9\"}}\nroutes: [{name: r, match: [\"/\"], upstream: api, public: true}]\n"
	cfg, err := config.Parse("t.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpsPprof {
		t.Error("ops_pprof is on by default")
	}
	cfg, err = config.Parse("t.yaml", []byte(base+"ops_pprof: true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.OpsPprof {
		t.Error("ops_pprof: true did not turn it on")
	}
	if _, err := config.Parse("t.yaml", []byte(base+"ops_pprof: sometimes\n"), nil); err == nil {
		t.Error("ops_pprof: sometimes was accepted")
	}
}
