package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/config"
)

// TestDeployConfigsValidate keeps the shipped deployment configs loadable: deploy/gateway.yaml
// and the gateway.yaml embedded in the Kubernetes ConfigMap.
func TestDeployConfigsValidate(t *testing.T) {
	noEnv := func(string) string { return "" }
	if _, err := config.Load(filepath.Join("..", "deploy", "gateway.yaml"), noEnv); err != nil {
		t.Fatalf("deploy/gateway.yaml: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", "authgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind != "ConfigMap" {
			continue
		}
		found = true
		if _, err := config.Parse("configmap/gateway.yaml", []byte(doc.Data["gateway.yaml"]), noEnv); err != nil {
			t.Errorf("ConfigMap gateway.yaml: %v", err)
		}
	}
	if !found {
		t.Fatal("no ConfigMap in deploy/kubernetes/authgate.yaml")
	}
}
