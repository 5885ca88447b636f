package gateway_test

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGatewayFollowsGoldenPolicy replays policy/testdata/explain.golden (every method and
// path of the example policy of SPEC section 4, with every scope set and role, path tricks
// included) against a real gateway serving the repository's gateway.yaml, over raw TCP so
// no client cleans the path. Each request carries an API key with exactly the line's
// scopes. The gateway must do what `authgate policy explain` says: forward the allowed
// ones (as the cleaned path), refuse the others with the same status and code, and never
// forward a refused one.
func TestGatewayFollowsGoldenPolicy(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h, api, admin, addr := goldenGateway(t, raw)
	roles := h.s.Config().Policy.Roles

	keys := map[string]string{} // credential column -> key with those scopes
	keyFor := func(cred string) string {
		if k, ok := keys[cred]; ok {
			return k
		}
		scopes := []string{}
		if r, ok := strings.CutPrefix(cred, "role:"); ok {
			scopes = roles[r]
		} else if s := strings.TrimPrefix(cred, "scopes:"); s != "" {
			scopes = strings.Split(s, ",")
		}
		a := rawRequest(t, addr, requestText("POST", "/api/auth/api-keys/", "gw.test",
			"X-API-Key: "+admin, "Content-Type: application/json", "Content-Length: "+strconv.Itoa(len(keyBody(scopes))))+keyBody(scopes))
		if a.status != http.StatusCreated {
			t.Fatalf("create key %s: %d %s", cred, a.status, a.body)
		}
		k := decodeJSON[struct {
			Key string `json:"key"`
		}](t, a).Key
		keys[cred] = k
		return k
	}

	f, err := os.Open(filepath.Join("..", "policy", "testdata", "explain.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		lines++
		method, path, cred, verdict := fields[0], fields[1], fields[2], fields[4]
		before := api.count()
		a := rawRequest(t, addr, requestText(method, path, "gw.test", "X-API-Key: "+keyFor(cred)))
		forwarded := api.count() - before
		switch verdict {
		case "ALLOW":
			clean := fields[len(fields)-1]
			if a.status != http.StatusOK || forwarded != 1 {
				t.Errorf("%s: status %d, forwarded %d; want 200 forwarded (%s)", sc.Text(), a.status, forwarded, a.body)
			} else if got := api.requests()[before].RequestURI; got != clean {
				t.Errorf("%s: forwarded as %s, want %s", sc.Text(), got, clean)
			}
		case "DENY":
			status, _ := strconv.Atoi(fields[5])
			code := fields[6]
			if forwarded != 0 || a.status != status || !strings.Contains(string(a.body), `"error":"`+code+`"`) {
				t.Errorf("%s: status %d, forwarded %d, body %s", sc.Text(), a.status, forwarded, a.body)
			}
		case "GATEWAY":
			if forwarded != 0 {
				t.Errorf("%s: the gateway's own path was forwarded", sc.Text())
			}
		default:
			t.Fatalf("unknown verdict in %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 600 {
		t.Fatalf("replayed %d golden lines, want every one (over 600)", lines)
	}
}

func keyBody(scopes []string) string {
	q := make([]string, len(scopes))
	for i, s := range scopes {
		q[i] = strconv.Quote(s)
	}
	return `{"name":"golden","expires_in_days":0,"scopes":[` + strings.Join(q, ",") + `]}`
}

// goldenGateway serves config (a golden table's gateway.yaml) with its upstream "api" and a
// bootstrap admin key, and returns the harness, the upstream, the admin key and the
// address to send raw requests to.
func goldenGateway(t *testing.T, config []byte) (h *harness, api *upstream, admin, addr string) {
	t.Helper()
	api = startUpstream(t, "api", nil)
	admin = newAdminKey(t)
	yaml := string(config) + "\nbootstrap:\n  admin_key: \"" + admin + "\"\n"
	h = newGatewayYAML(t, yaml, map[string]*upstream{"api": api}, func(k string) string {
		switch k {
		case "AUTHGATE_UPSTREAM":
			return api.srv.URL
		case "AUTHGATE_LISTEN":
			return "127.0.0.1:0"
		case "AUTHGATE_OPS_LISTEN":
			return "localhost:0"
		}
		return ""
	}, "")
	return h, api, admin, h.listen()
}
