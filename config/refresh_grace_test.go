package config

import (
	"strings"
	"testing"
	"time"
)

// TestFaultAlso3_RefreshReuseGraceConfig: issuer.refresh_reuse_grace defaults to 5s, 0s
// written explicitly turns it off, and a negative or over-long grace is refused at its line.
func TestFaultAlso3_RefreshReuseGraceConfig(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte("issuer:\n  refresh_reuse_grace: 0s\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer.RefreshReuseGrace != 0 {
		t.Errorf("refresh_reuse_grace: 0s parsed as %s, want 0 (off)", cfg.Issuer.RefreshReuseGrace)
	}
	cfg, err = Parse("gw.yaml", []byte("issuer:\n  refresh_reuse_grace: 2s\n"), getenv)
	if err != nil || cfg.Issuer.RefreshReuseGrace != 2*time.Second {
		t.Errorf("refresh_reuse_grace: 2s = %v, %v", cfg, err)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"issuer:\n  refresh_reuse_grace: -1s\n", "gw.yaml:2: issuer.refresh_reuse_grace: "},
		{"issuer:\n  refresh_reuse_grace: 2m\n", "gw.yaml:2: issuer.refresh_reuse_grace: at most 1m0s"},
	} {
		cfg, err := Parse("gw.yaml", []byte(tt.yaml), getenv)
		if cfg != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want a refusal containing %q", tt.yaml, err, tt.want)
		}
	}
}
