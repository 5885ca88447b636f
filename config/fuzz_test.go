package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate"
)

// FuzzParse checks that no file makes Parse panic, that every refusal is located, and that
// every accepted configuration is valid and survives a round trip through YAML.
func FuzzParse(f *testing.F) {
	f.Add(authgate.DefaultConfig)
	for _, tt := range badConfigs {
		f.Add([]byte(tt.yaml))
	}
	f.Add([]byte("upstreams:\n  api: {url: \"http://127.0.0.1:9000\"}\nroutes:\n  - name: a\n    match: [\"GET /a/{id...}\", \"example.com/{$}\"]\n    upstream: api\n    rate_limit: {requests: 5}\n"))
	f.Add([]byte("a: &x {b: 1}\nlisten: *x\nstore: {redis: {db: ${PORT_NUM:-5}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, getenv)
		if err != nil {
			if cfg != nil {
				t.Fatalf("got a config and an error %v", err)
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got error %T %v, want Problems", err, err)
			}
			if len(ps) == 0 {
				t.Fatal("got empty Problems")
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" {
					t.Errorf("problem %q: File = %q, want fuzz.yaml", p, p.File)
				}
				if p.Field == "" && p.Line <= 0 {
					t.Errorf("problem %q has neither field nor line", p)
				}
			}
			return
		}
		if ps := cfg.validate(); len(ps) > 0 {
			t.Fatalf("accepted config does not re-validate: %v", ps)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		if bytes.Contains(out, []byte("${")) {
			return // the values would be expanded again
		}
		cfg2, err := Parse("fuzz.yaml", out, getenv)
		if err != nil {
			t.Fatalf("accepted config, written back as YAML, is refused: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(cfg2)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\nwant\n%s", strings.TrimSpace(string(out2)), out)
		}
	})
}
