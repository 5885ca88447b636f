package gateway_test

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/user"
)

var expiryOptionRE = regexp.MustCompile(`<option value="(\d+)"( selected)?>([^<]*)</option>`)

// The console's new-key form offers exactly api_keys.allowed_expiry_days, the default
// preselected, as the page is served; the defaults give 30, 90 (selected), 365, never.
func TestConsoleExpiryChoicesFollowConfig(t *testing.T) {
	for _, c := range []struct {
		name, apiKeys string
		want          []string // value:label, "*" marking the selected one
	}{
		{"configured", "api_keys: {allowed_expiry_days: [14, 0, 1, 7], default_expiry_days: 7}\n",
			[]string{"1:in 1 day", "*7:in 7 days", "14:in 14 days", "0:never"}},
		{"defaults", "", []string{"30:in 30 days", "*90:in 90 days", "365:in 365 days", "0:never"}},
		{"never is the default", "api_keys: {allowed_expiry_days: [0, 30], default_expiry_days: 0}\n",
			[]string{"30:in 30 days", "*0:never"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			yaml := gatewayHeader + `issuer: {enabled: true, name: authgate-console, signing_key_file: "` +
				filepath.Join(t.TempDir(), "key.pem") + `"}
console: {enabled: true, path: /console/}
` + c.apiKeys
			cfg, err := config.Parse("console.yaml", []byte(yaml), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
				PasswordParams: &user.TestParams})
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, s: s}
			page := h.do("GET", "/console/", "")
			if page.status != http.StatusOK {
				t.Fatalf("GET /console/: %d", page.status)
			}
			var got []string
			for _, m := range expiryOptionRE.FindAllStringSubmatch(string(page.body), -1) {
				sel := ""
				if m[2] != "" {
					sel = "*"
				}
				got = append(got, sel+m[1]+":"+m[3])
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("expiry options %q, want %q", got, c.want)
			}
		})
	}
}

// The key settings read once at start (the expiry choices the API and the console offer,
// the key prefix, the management API's paths) warn on a reload that changes them.
func TestReloadWarnsOnStartOnlyKeySettings(t *testing.T) {
	ups := map[string]*upstream{"api": startUpstream(t, "api", nil)}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, configV1)
	getenv := env(ups, nil)
	cfg, err := config.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: prometheus.NewRegistry(),
		ConfigPath: path, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, configV1+"api_keys: {prefix: ag, allowed_expiry_days: [7, 30], default_expiry_days: 7}\nauth_api: {prefix: /auth}\n")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, f := range []string{"api_keys.prefix", "api_keys.allowed_expiry_days", "auth_api"} {
		if !strings.Contains(logs.String(), `"msg":"config change needs a restart to take effect","field":"`+f+`"`) {
			t.Errorf("no restart warning for %s:\n%s", f, logs)
		}
	}
	if strings.Contains(logs.String(), `"field":"api_keys.hash_pepper"`) {
		t.Errorf("a warning for the unchanged pepper:\n%s", logs)
	}
}
