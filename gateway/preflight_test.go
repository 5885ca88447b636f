package gateway_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
)

// A refused reload logs every problem of the file, of every kind, in one line: not only
// the first kind found.
func TestReloadLogsEveryProblemAtOnce(t *testing.T) {
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	writeFile(t, path, configV1)
	getenv := env(ups, nil)
	cfg, err := gateway.LoadConfig(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Registry: prometheus.NewRegistry(), ConfigPath: path, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, ups: ups}
	key, err := apikey.Generate("ag", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, fmt.Sprintf(`%sbootstrap:
  admin_key: %q
jwt:
  issuers:
    - {issuer: "https://idp.example", algorithms: [RS256], public_key_files: [%q]}
upstreams:
  api: {url: "${UP_api}", timeout: 5s}
routes:
  - {name: stable, match: ["GET /stable/"], upstream: api, public: true, scopez: [x]}
  - {name: other, match: ["GET /other/"], upstream: apii, public: true}
`, gatewayHeader, key, filepath.Join(dir, "missing.pem")))
	if err := s.Reload(); err == nil {
		t.Fatal("reload accepted a file with problems")
	}
	want := []string{
		`gateway.yaml:4: bootstrap.admin_key: a key of prefix \"ag\", but api_keys.prefix is \"sk\"`,
		`gateway.yaml:7: jwt.issuers[0].public_key_files: jwtauth: load public keys: open `,
		`gateway.yaml:11: routes[0].scopez: unknown field`,
		`gateway.yaml:12: routes[1].upstream: unknown upstream \"apii\" (did you mean \"api\"?)`,
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "config reload refused") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no refusal logged:\n%s", logs.String())
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("the refusal lacks %s:\n%s", w, line)
		}
	}
	if strings.Count(line, "gateway.yaml:") != len(want) {
		t.Errorf("the refusal lists %d problems, want %d:\n%s", strings.Count(line, "gateway.yaml:"), len(want), line)
	}
	if strings.Contains(line, key) {
		t.Error("the bootstrap key is in the log")
	}
	if got := status(h, "/old/x"); got != 200 {
		t.Errorf("after the refused reload /old/x = %d, want 200 (the previous configuration serves)", got)
	}
}

// Preflight refuses what New would refuse, without a network: each case one problem.
func TestPreflight(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml, field, msg string
	}{
		{"tls pair missing", "tls: {cert_file: " + filepath.Join(dir, "x.crt") + ", key_file: " + filepath.Join(dir, "x.key") + "}\n",
			"tls.cert_file", "the certificate and key do not load"},
		{"hmac secret short", "jwt:\n  issuers:\n    - {issuer: i, algorithms: [HS256], hmac_secret: short}\n",
			"jwt.issuers[0]", `"HS256" needs a secret of at least 32 bytes, got 5`},
		{"signing key garbage", "issuer: {enabled: true, name: https://gw.example, signing_key_file: " + garbage + "}\n",
			"issuer.signing_key_file", "key file"},
		{"bootstrap key malformed", "bootstrap: {admin_key: sk_live_nope}\n",
			"bootstrap.admin_key", `not a well-formed key of prefix "sk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.yaml", []byte(gatewayHeader+tt.yaml), func(string) string { return "" })
			if err != nil {
				t.Fatalf("the file itself is valid: %v", err)
			}
			ps := gateway.Preflight(cfg)
			if len(ps) != 1 || ps[0].Field != tt.field || !strings.Contains(ps[0].Msg, tt.msg) {
				t.Fatalf("Preflight = %+v, want one on %s containing %q", ps, tt.field, tt.msg)
			}
			if strings.Contains(ps[0].Msg, "short") && tt.name == "hmac secret short" {
				t.Error("the secret is in the message")
			}
			if _, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}); err == nil && tt.field != "tls.cert_file" {
				t.Errorf("New accepted what Preflight refuses")
			}
		})
	}
}
