package config_test

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/config"
)

// TestTracingConfig: tracing is off by default with the OTLP/HTTP default endpoint; when
// on, a bad endpoint, a ratio outside [0, 1] or an empty service name are refused by path.
func TestTracingConfig(t *testing.T) {
	base := "upstreams: {api: {url: \"http://127.0.0.1:9\"}}\nroutes: [{name: r, match: [\"/\"], upstream: api, public: true}]\n"
	cfg, err := config.Parse("t.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing.Enabled || cfg.Tracing.Endpoint != "http://localhost:4318/v1/traces" || cfg.Tracing.SampleRatio != 1 || cfg.Tracing.ServiceName != "authgate" {
		t.Errorf("defaults: %+v", cfg.Tracing)
	}
	cfg, err = config.Parse("t.yaml", []byte(base+"tracing: {enabled: true, endpoint: \"http://otel:4318/v1/traces\", sample_ratio: 0.25}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Tracing.Enabled || cfg.Tracing.SampleRatio != 0.25 || cfg.Tracing.Endpoint != "http://otel:4318/v1/traces" {
		t.Errorf("parsed: %+v", cfg.Tracing)
	}
	for _, tc := range []struct{ yaml, field string }{
		{"tracing: {enabled: true, endpoint: \"otel:4318\"}", "tracing.endpoint"},
		{"tracing: {enabled: true, endpoint: \"\"}", "tracing.endpoint"},
		{"tracing: {enabled: true, sample_ratio: 1.5}", "tracing.sample_ratio"},
		{"tracing: {sample_ratio: -0.1}", "tracing.sample_ratio"},
		{"tracing: {enabled: true, service_name: \" \"}", "tracing.service_name"},
	} {
		_, err := config.Parse("t.yaml", []byte(base+tc.yaml+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.field)
		}
	}
}
