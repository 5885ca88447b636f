package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
)

func TestTokenSetAndRemove(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	getenv := func(k string) string { return env[k] }
	path := filepath.Join(dir, ".config", "authgate", "credentials.json")
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, getenv, &out, &errb); err != nil {
			t.Fatalf("authgate %s: %v (stderr %q)", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}

	runOK("token", "set", "sk_live_example")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("credentials file not written: %v", err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %o, want 700", dst.Mode().Perm())
	}
	var c credentials
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &c); err != nil || c.Token != "sk_live_example" {
		t.Fatalf("file = %q (%v), want token sk_live_example", data, err)
	}

	runOK("token", "set", "sk_live_second") // overwrite keeps the mode
	if c, _ = loadCredentials(path); c.Token != "sk_live_second" {
		t.Errorf("token after overwrite = %q, want sk_live_second", c.Token)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after overwrite = %o, want 600", st.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".credentials-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	runOK("token", "remove")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after remove: stat err = %v, want not exist", err)
	}
	if out := runOK("token", "remove"); !strings.Contains(out, "no saved credential") {
		t.Errorf("second remove printed %q", out)
	}

	env["XDG_CONFIG_HOME"] = filepath.Join(dir, "xdg")
	runOK("token", "set", "tok")
	if _, err := os.Stat(filepath.Join(dir, "xdg", "authgate", "credentials.json")); err != nil {
		t.Errorf("XDG_CONFIG_HOME not honoured: %v", err)
	}
}

func TestTokenSetRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string { return map[string]string{"HOME": dir}[k] }
	for _, args := range [][]string{{"token", "set", ""}, {"token", "set", "two words"}, {"token"}, {"token", "set"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, getenv, &out, &errb); err == nil {
			t.Errorf("authgate %q: want an error", args)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".config")); !os.IsNotExist(err) {
		t.Errorf("a refused token set wrote something: %v", err)
	}
}

func TestKeysGenerate(t *testing.T) {
	noEnv := func(string) string { return "" }
	gen := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"keys", "generate"}, args...), noEnv, &out, &errb)
		return strings.TrimSpace(out.String()), err
	}
	a, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := gen()
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	if p, err := apikey.Parse(a, "sk"); err != nil || p.Env != "live" {
		t.Errorf("generated %q: Parse = %+v, %v; want a live key", a, p, err)
	}
	k, err := gen("--env", "test", "--prefix", "ag")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := apikey.Parse(k, "ag"); err != nil || p.Env != "test" {
		t.Errorf("generated %q: Parse = %+v, %v; want an ag test key", k, p, err)
	}
	if _, err := gen("--env", "prod"); err == nil {
		t.Error("--env prod: want an error")
	}
}

// keys generate makes a key of the configured api_keys.prefix (the one serve accepts as
// bootstrap.admin_key), from --config or AUTHGATE_CONFIG, without needing the file's
// secrets; --prefix overrides it.
func TestKeysGenerateUsesConfiguredPrefix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, path, `api_keys: {prefix: acme}
store:
  type: redis
  redis: {addrs: ["127.0.0.1:1"], password: "${REDIS_PASSWORD}"}
bootstrap: {admin_key: "${ADMIN_KEY}"}
`)
	gen := func(getenv func(string) string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), append([]string{"keys", "generate"}, args...), getenv, &out, &errb); err != nil {
			t.Fatalf("keys generate %v: %v (%s)", args, err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	noEnv := func(string) string { return "" }
	viaEnv := func(k string) string {
		if k == "AUTHGATE_CONFIG" {
			return path
		}
		return ""
	}
	for _, c := range []struct {
		name   string
		getenv func(string) string
		args   []string
		prefix string
	}{
		{"--config", noEnv, []string{"--config", path}, "acme"},
		{"AUTHGATE_CONFIG", viaEnv, nil, "acme"},
		{"--prefix wins", viaEnv, []string{"--prefix", "zz"}, "zz"},
		{"embedded default", noEnv, nil, "sk"},
	} {
		k := gen(c.getenv, c.args...)
		if _, err := apikey.Parse(k, c.prefix); err != nil {
			t.Errorf("%s: generated %q, not a key of prefix %q", c.name, k, c.prefix)
		}
	}
	// The key it makes is one the same file accepts as bootstrap.admin_key.
	key := gen(noEnv, "--config", path)
	withKey := func(k string) string {
		if k == "ADMIN_KEY" {
			return key
		}
		return "x"
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"config", "validate", "--config", path}, withKey, &out, &errb); err != nil {
		t.Errorf("validate with the generated key: %v\n%s", err, errb.String())
	}
}
