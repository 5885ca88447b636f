package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/gateway/apikey"
)

// keyNames lists the names of the keys `keys list -o json` printed.
func keyNames(t *testing.T, out string) []string {
	t.Helper()
	var names []string
	for _, k := range decodePage(t, out).Keys {
		names = append(names, k.Name)
	}
	return names
}

// TestAddressOrder: the gateway a remote command talks to is --addr, else
// $AUTHGATE_ADDR, else the saved login's address, else http://localhost:8080; a saved
// login's tokens go only to its own gateway.
func TestAddressOrder(t *testing.T) {
	adminKey, _ := apikey.Generate("sk", apikey.Live)
	cfg := strings.Replace(memoryGatewayYAML, "ADMIN_KEY", adminKey, 1)
	gw := map[string]string{}
	for _, name := range []string{"flag", "env", "saved"} {
		base := startKeysGateway(t, cfg)
		waitForKey(t, base, adminKey)
		// Each gateway holds one key named after it: a listing shows which one answered.
		cli{t: t, env: map[string]string{"HOME": t.TempDir()}}.ok("keys", "create", "--name", "on-"+name, "--addr", base, "--token", adminKey)
		gw[name] = base
	}
	home := t.TempDir()
	path := filepath.Join(home, ".config", "authgate", "credentials.json")
	login := credentials{Token: adminKey, Refresh: "rt_not_used", Email: "me@example.com", Addr: gw["saved"]}
	if err := saveCredentials(path, login); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the key name of the gateway that must answer
	}{
		{"--addr beats the environment and the saved login", map[string]string{"AUTHGATE_ADDR": gw["env"], "AUTHGATE_TOKEN": adminKey},
			[]string{"--addr", gw["flag"]}, "on-flag"},
		{"AUTHGATE_ADDR beats the saved login", map[string]string{"AUTHGATE_ADDR": gw["env"], "AUTHGATE_TOKEN": adminKey}, nil, "on-env"},
		{"the saved login's address", nil, nil, "on-saved"},
		{"--addr naming the saved login's gateway uses the login", map[string]string{"AUTHGATE_ADDR": gw["env"]},
			[]string{"--addr", gw["saved"] + "/"}, "on-saved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": home}
			for k, v := range tt.env {
				env[k] = v
			}
			c := cli{t: t, env: env}
			got := keyNames(t, c.ok(append([]string{"keys", "list", "-o", "json"}, tt.args...)...))
			if len(got) != 2 || !strings.Contains(strings.Join(got, ","), tt.want) {
				t.Errorf("got keys %v, want the gateway with %s", got, tt.want)
			}
		})
	}

	t.Run("the saved login's token is not sent to another gateway", func(t *testing.T) {
		c := cli{t: t, env: map[string]string{"HOME": home, "AUTHGATE_ADDR": gw["env"]}}
		out, _, err := c.run("keys", "list")
		want := "the saved login is for " + gw["saved"] + ", not " + gw["env"]
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "authgate login --addr "+gw["env"]) {
			t.Errorf("got %v (stdout %q), want an error saying %q and how to log in there", err, out, want)
		}
	})

	t.Run("a token set credential goes wherever the command talks to", func(t *testing.T) {
		home := t.TempDir()
		c := cli{t: t, env: map[string]string{"HOME": home, "AUTHGATE_ADDR": gw["env"]}}
		c.ok("token", "set", adminKey)
		if got := keyNames(t, c.ok("keys", "list", "-o", "json")); !strings.Contains(strings.Join(got, ","), "on-env") {
			t.Errorf("got %v, want the AUTHGATE_ADDR gateway's keys", got)
		}
	})

	t.Run("default", func(t *testing.T) {
		for _, saved := range []credentials{{}, {Token: "sk_live_x"}} {
			got, err := resolveAddr("keys", "", func(string) string { return "" }, saved)
			if err != nil || got != "http://localhost:8080" {
				t.Errorf("nothing set (saved %+v): got %q, %v; want http://localhost:8080", saved, got, err)
			}
		}
		if got, _ := resolveAddr("keys", "127.0.0.1:9", func(string) string { return "" }, credentials{}); got != "http://127.0.0.1:9" {
			t.Errorf("host:port: got %q, want http://127.0.0.1:9", got)
		}
	})
}

// TestTokenSetEndsSavedLogin: token set over a saved login warns, revokes the login's
// refresh token at its gateway, and says plainly when the gateway could not be told.
func TestTokenSetEndsSavedLogin(t *testing.T) {
	t.Parallel()
	base := startServe(t, issuerYAML(t.TempDir(), "{type: memory}", "", ""), true)
	home := t.TempDir()
	path := filepath.Join(home, ".config", "authgate", "credentials.json")
	c := cli{t: t, env: map[string]string{"HOME": home}}
	const replacement = "sk_live_replacement"

	c.okIn(rootPassword+"\n", "login", "--email", rootEmail, "--addr", base, "--password-stdin")
	first, _ := savedCredentials(t, home)
	out, errOut, err := c.run("token", "set", replacement)
	if err != nil {
		t.Fatalf("token set: %v", err)
	}
	for _, want := range []string{"warning: this replaces the login of " + rootEmail + " at " + base, "its refresh token is revoked"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("token set: stderr %q, want %q", errOut, want)
		}
	}
	if !strings.Contains(out, "saved to") {
		t.Errorf("token set: stdout %q", out)
	}
	if code := postRefresh(t, base, first.Refresh); code != 401 {
		t.Errorf("the replaced login's refresh token: got %d, want 401", code)
	}
	if got, _ := loadCredentials(path); got != (credentials{Token: replacement}) {
		t.Errorf("saved: got %+v, want the new credential only", got)
	}

	// A credential from token set has no session: replacing it says nothing.
	if _, errOut, err := c.run("token", "set", replacement+"2"); err != nil || errOut != "" {
		t.Errorf("token set over token set: %v, stderr %q; want success and no warning", err, errOut)
	}

	// The gateway cannot be told: the command says so, and the token stays valid.
	c.okIn(rootPassword+"\n", "login", "--email", rootEmail, "--addr", base, "--password-stdin")
	second, _ := savedCredentials(t, home)
	unreachable := second
	unreachable.Addr = "http://127.0.0.1:1"
	if err := saveCredentials(path, unreachable); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = c.run("token", "set", replacement)
	if err != nil {
		t.Fatalf("token set: %v", err)
	}
	if !strings.Contains(errOut, "http://127.0.0.1:1 was not told") || !strings.Contains(errOut, "refresh token stays valid until it expires") {
		t.Errorf("token set, gateway down: stderr %q, want it to say the login was not ended", errOut)
	}
	if code := postRefresh(t, base, second.Refresh); code != 200 {
		t.Errorf("the refresh token the gateway was not told about: got %d, want 200 (still valid, as the warning says)", code)
	}
}

// TestOutputYAML: YAML keeps the JSON's keys in order and its types: strings that would
// read as numbers, booleans or null stay strings.
func TestOutputYAML(t *testing.T) {
	var b strings.Builder
	in := `{"z":"123","a":"true","n":"null","e":"","num":7,"t":true,"nil":null,"list":["x","0.5"],"obj":{"k":"v: w"}}`
	if err := writeYAML(&b, []byte(in)); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, b.String())
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(in), &want)
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(back)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("round trip: got %s, want %s\nyaml:\n%s", gotJSON, wantJSON, b.String())
	}
	if !strings.HasPrefix(b.String(), "z: \"123\"\na: \"true\"\n") || strings.Contains(b.String(), "{") {
		t.Errorf("want block style in the JSON's key order:\n%s", b.String())
	}
}
