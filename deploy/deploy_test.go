// Package deploy_test checks the deployment artefacts under deploy/: every YAML and JSON
// file parses, the alert rules pass promtool, every metric and label the rules and the
// dashboard use is one a running gateway exports, the Kubernetes manifests render and hold
// the properties docs/deploy.md promises, and the Dockerfile, the systemd unit and the
// Compose file agree with the configuration they run.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requireEnv reports whether the environment variable name is "1": CI sets
// AUTHGATE_REQUIRE_PROMTOOL and AUTHGATE_REQUIRE_KUBECTL so a missing tool fails there.
func requireEnv(name string) bool { return os.Getenv(name) == "1" }

// tool finds a command on PATH, skipping the test loudly when it is missing, or failing it
// when env says the tool is required.
func tool(t *testing.T, name, env string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if requireEnv(env) {
		t.Fatalf("%s is required (%s=1) but not on PATH: %v", name, env, err)
	}
	t.Skipf("SKIPPED: %s not installed; this check did NOT run (install it, or set %s=1 to make its absence fail)", name, env)
	return ""
}

// yamlDocs decodes every document of a (possibly multi-document) YAML stream.
func yamlDocs(t *testing.T, name string, data []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeployFilesParse parses every YAML and JSON file under deploy/.
func TestDeployFilesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			if docs := yamlDocs(t, path, readFile(t, path)); len(docs) == 0 {
				t.Errorf("%s: no YAML document", path)
			}
			n++
		case ".json":
			var v any
			if err := json.Unmarshal(readFile(t, path), &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// compose, prometheus.yml, alerts, two Grafana provisioning files, the dashboard, the
	// Compose gateway.yaml, and the kustomize files.
	if n < 15 {
		t.Fatalf("only %d YAML/JSON files under deploy/; the walk missed some", n)
	}
}

// TestAlertRulesPromtool runs `promtool check rules` on the alert rules, and `promtool
// test rules` on their unit tests.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "AUTHGATE_REQUIRE_PROMTOOL")
	out, err := exec.Command(promtool, "check", "rules", "prometheus/alerts.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules did not report SUCCESS:\n%s", out)
	}
	out, err = exec.Command(promtool, "test", "rules", "prometheus/alerts_test.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
