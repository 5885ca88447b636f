package gateway_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const headerConfig = `
routes:
  - {name: open,  match: ["/open/"],  upstream: api, public: true}
  - {name: keeps, match: ["/keeps/"], upstream: api, public: true, forward_credentials: true}
`

// TestSpoofedIdentityHeadersRemoved: whatever spelling a client uses, no X-Auth-* header
// (nor an underscore spelling a CGI upstream would read as one) reaches the upstream.
func TestSpoofedIdentityHeadersRemoved(t *testing.T) {
	h := newGateway(t, headerConfig, "api")
	api := h.ups["api"]
	a := rawRequest(t, h.listen(), requestText("GET", "/open/x", "gw.example",
		"X-Auth-Subject: admin",
		"X-Auth-Scopes: *",
		"x-auth-method: api_key",
		"X-AUTH-KEY-ID: key_forged",
		"X-Auth-Org: evil",
		"X-Auth-Environment: live",
		"X-Auth-Anything: 1",
		"X_Auth_Subject: admin",
		"x_auth_scopes: *",
		"X-Auth_Org: evil",
		"X-Authority: kept",
	))
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", a.status)
	}
	got := api.requests()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	for k, v := range got[0].Header {
		if n := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(n, "x-auth-") {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if got[0].Header.Get("X-Authority") != "kept" {
		t.Errorf("X-Authority = %q, want it forwarded (not an X-Auth-* header)", got[0].Header.Get("X-Authority"))
	}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestID(t *testing.T) {
	h := newGateway(t, headerConfig, "api")
	api := h.ups["api"]
	addr := h.listen()
	tests := []struct {
		name   string
		sent   []string // X-Request-Id header lines
		keeps  string   // the id that must be kept, "" = a generated one
		reject bool
	}{
		{name: "none sent", keeps: ""},
		{name: "sane kept", sent: []string{"X-Request-Id: abc-123_x.y:z"}, keeps: "abc-123_x.y:z"},
		{name: "UUID kept", sent: []string{"X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e"}, keeps: "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{name: "spaces replaced", sent: []string{"X-Request-Id: has space"}},
		{name: "quotes replaced", sent: []string{`X-Request-Id: a"b`}},
		{name: "log-injection attempt replaced", sent: []string{"X-Request-Id: a\\nlevel=ERROR"}},
		{name: "too long replaced", sent: []string{"X-Request-Id: " + strings.Repeat("a", 129)}},
		{name: "128 characters kept", sent: []string{"X-Request-Id: " + strings.Repeat("b", 128)}, keeps: strings.Repeat("b", 128)},
		{name: "underscore spelling ignored", sent: []string{"X_Request_Id: spoof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api.reset()
			a := rawRequest(t, addr, requestText("GET", "/open/x", "gw.example", tt.sent...))
			if a.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", a.status)
			}
			id := a.header.Get("X-Request-Id")
			if tt.keeps != "" && id != tt.keeps {
				t.Errorf("X-Request-Id = %q, want the client's %q", id, tt.keeps)
			}
			if tt.keeps == "" && !generatedID.MatchString(id) {
				t.Errorf("X-Request-Id = %q, want a generated 32-hex id", id)
			}
			got := api.requests()
			if len(got) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(got))
			}
			if vs := got[0].Header.Values("X-Request-Id"); len(vs) != 1 || vs[0] != id {
				t.Errorf("upstream X-Request-Id = %q, want [%q]", vs, id)
			}
			for k := range got[0].Header {
				if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-request-id") && k != "X-Request-Id" {
					t.Errorf("upstream received %s", k)
				}
			}
		})
	}
	// Rejections carry the id too, and a sane client id is the one in the body.
	a := rawRequest(t, addr, requestText("GET", "/nowhere", "gw.example", "X-Request-Id: trace-42"))
	assertRejected(t, a, 404, "no_route")
	if a.header.Get("X-Request-Id") != "trace-42" {
		t.Errorf("X-Request-Id on a rejection = %q, want trace-42", a.header.Get("X-Request-Id"))
	}
}

func TestForwardedHeadersFromGateway(t *testing.T) {
	tests := []struct {
		name    string
		trusted bool
		want    map[string]string
		absent  []string
	}{
		{
			name: "untrusted peer: client's forwarding headers dropped",
			want: map[string]string{
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  "API.example.com:8080", // as sent: case and port kept
			},
			absent: []string{"Forwarded", "X_forwarded_for", "X-Forwarded-Port", "X-Real-Ip"},
		},
		{
			name:    "trusted peer: chain kept and peer appended",
			trusted: true,
			want: map[string]string{
				"X-Forwarded-For":   "198.51.100.1, 10.0.0.5, 127.0.0.1",
				"X-Forwarded-Proto": "https",
				"X-Forwarded-Host":  "public.example.com",
			},
			absent: []string{"Forwarded", "X_forwarded_for"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := headerConfig
			if tt.trusted {
				cfg = "client_ip: {trusted_proxies: [127.0.0.1/32]}\n" + cfg
			}
			h := newGateway(t, cfg, "api")
			a := rawRequest(t, h.listen(), requestText("GET", "/open/x", "API.example.com:8080",
				"X-Forwarded-Port: 1234",
				"X-Real-IP: 6.6.6.6",
				"X-Forwarded-For: 198.51.100.1, 10.0.0.5",
				"X-Forwarded-Proto: https",
				"X-Forwarded-Host: public.example.com",
				"Forwarded: for=6.6.6.6;proto=https",
				"X_Forwarded_For: 6.6.6.6",
			))
			if a.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", a.status)
			}
			got := h.ups["api"].requests()
			if len(got) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(got))
			}
			for k, v := range tt.want {
				if g := strings.Join(got[0].Header.Values(k), ", "); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			for _, k := range tt.absent {
				if vs, ok := got[0].Header[k]; ok {
					t.Errorf("%s = %q, want it dropped", k, vs)
				}
			}
		})
	}
}

func TestCredentialsStrippedOnForward(t *testing.T) {
	h := newGateway(t, headerConfig, "api")
	api := h.ups["api"]
	addr := h.listen()
	tests := []struct {
		target          string
		wantAuthz, wKey string
	}{
		{"/open/x", "", ""},
		{"/keeps/x", "Bearer sk_live_abcdef", "sk_live_abcdef"},
	}
	for _, tt := range tests {
		api.reset()
		a := rawRequest(t, addr, requestText("GET", tt.target, "gw.example",
			"Authorization: Bearer sk_live_abcdef", "x-api-key: sk_live_abcdef"))
		if a.status != http.StatusOK {
			t.Fatalf("%s: status = %d, want 200", tt.target, a.status)
		}
		got := api.requests()
		if len(got) != 1 {
			t.Fatalf("%s: upstream saw %d requests, want 1", tt.target, len(got))
		}
		if g := got[0].Header.Get("Authorization"); g != tt.wantAuthz {
			t.Errorf("%s: Authorization = %q, want %q", tt.target, g, tt.wantAuthz)
		}
		if g := got[0].Header.Get("X-Api-Key"); g != tt.wKey {
			t.Errorf("%s: X-API-Key = %q, want %q", tt.target, g, tt.wKey)
		}
	}
}
