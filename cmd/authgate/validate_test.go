package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
)

// onePassConfig has problems of every kind, each of which used to wait for the others to
// be fixed, or for serve, to show: an unknown field (the YAML pass), an unknown upstream
// (validation), a TLS pair that does not exist and a bootstrap key of another prefix
// (what serve loads before it listens).
func onePassConfig(t *testing.T, dir string) (string, []string) {
	t.Helper()
	key, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, path, fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
tls:
  cert_file: %q
  key_file: %q
api_keys:
  prefix: ag
bootstrap:
  admin_key: %q
upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - {name: r, match: ["GET /r/"], upstream: apii, scopez: [x]}
`, filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key"), key))
	return path, []string{
		`gateway.yaml:4: tls.cert_file: the certificate and key do not load: `,
		`gateway.yaml:9: bootstrap.admin_key: a key of prefix "sk", but api_keys.prefix is "ag" (make one with ` + "`authgate keys generate --config FILE`",
		`gateway.yaml:13: routes[0].scopez: unknown field`,
		`gateway.yaml:13: routes[0].upstream: unknown upstream "apii" (did you mean "api"?)`,
	}
}

func TestValidateReportsWhatServeRefusesInOnePass(t *testing.T) {
	dir := t.TempDir()
	path, want := onePassConfig(t, dir)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"config", "validate", "--config", path}, func(string) string { return "" }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d problem(s)", len(want))) {
		t.Fatalf("validate: err = %v, want %d problem(s); stderr:\n%s", err, len(want), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("validate printed %d lines, want %d:\n%s", len(lines), len(want), errb.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start %q", i, lines[i], w)
		}
	}
	if strings.Contains(errb.String(), "sk_live_") {
		t.Error("the bootstrap key is in the output")
	}

	// serve refuses the same file with the same list, before it listens.
	var sout, serr bytes.Buffer
	err = run(context.Background(), []string{"serve", "--config", path}, func(string) string { return "" }, &sout, &serr)
	if err == nil {
		t.Fatal("serve started with the file validate refused")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("serve's error lacks %q:\n%v", w, err)
		}
	}
}

// Without --config, validate checks the file serve would read: $AUTHGATE_CONFIG.
func TestValidateReadsAuthgateConfig(t *testing.T) {
	dir := t.TempDir()
	path, want := onePassConfig(t, dir)
	getenv := func(k string) string {
		if k == "AUTHGATE_CONFIG" {
			return path
		}
		return ""
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"config", "validate"}, getenv, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(errb.String(), want[0]) {
		t.Errorf("validate with AUTHGATE_CONFIG: err %v, stderr:\n%s", err, errb.String())
	}
}
