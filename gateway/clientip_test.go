package gateway_test

import (
	"net/http"
	"testing"
)

func TestGlobalIPLists(t *testing.T) {
	const routes = `
routes:
  - {name: open, match: ["GET /open/"], upstream: api, public: true}
`
	tests := []struct {
		name   string
		config string
		remote string
		xff    string // "" = none
		want   int
	}{
		{
			name:   "XFF from an untrusted peer is not believed",
			config: "ip_allowlist: [10.0.0.0/8]\n",
			remote: "127.0.0.1:40000", xff: "10.1.2.3", want: 403,
		},
		{
			name:   "XFF from a trusted proxy is believed",
			config: "ip_allowlist: [10.0.0.0/8]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "10.1.2.3", want: 200,
		},
		{
			name:   "forged left-most entry does not help",
			config: "ip_allowlist: [10.0.0.0/8]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "10.1.2.3, 203.0.113.9", want: 403,
		},
		{
			name:   "trusted proxy itself is not the client",
			config: "ip_allowlist: [127.0.0.0/8]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "203.0.113.9", want: 403,
		},
		{
			name:   "peer in the allowlist",
			config: "ip_allowlist: [127.0.0.0/8]\n",
			remote: "127.0.0.1:40000", want: 200,
		},
		{
			name:   "denylist by resolved client",
			config: "ip_denylist: [10.1.2.3]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "10.1.2.3", want: 403,
		},
		{
			name:   "denylist, other client",
			config: "ip_denylist: [10.1.2.3]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "10.1.2.4", want: 200,
		},
		{
			name:   "deny beats allow",
			config: "ip_allowlist: [10.0.0.0/8]\nip_denylist: [10.1.0.0/16]\n",
			remote: "10.1.2.3:40000", want: 403,
		},
		{
			name:   "IPv6 allowlist admits",
			config: "ip_allowlist: [\"2001:db8::/32\"]\n",
			remote: "[2001:db8:5::1]:40000", want: 200,
		},
		{
			name:   "IPv6 allowlist refuses",
			config: "ip_allowlist: [\"2001:db8::/32\"]\n",
			remote: "[2001:db9::1]:40000", want: 403,
		},
		{
			name:   "IPv4-mapped peer matches an IPv4 list",
			config: "ip_allowlist: [10.0.0.0/8]\n",
			remote: "[::ffff:10.1.2.3]:40000", want: 200,
		},
		{
			name:   "IPv6 client behind an IPv4 trusted proxy",
			config: "ip_denylist: [\"2001:db8::/32\"]\nclient_ip: {trusted_proxies: [127.0.0.1/32]}\n",
			remote: "127.0.0.1:40000", xff: "[2001:db8::7]:5555", want: 403,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newGateway(t, tt.config+routes, "api")
			var hdr []string
			if tt.xff != "" {
				hdr = append(hdr, "X-Forwarded-For: "+tt.xff)
			}
			a := h.do("GET", "http://gw.example/open/x", tt.remote, hdr...)
			if tt.want == 403 {
				assertRejected(t, a, 403, "ip_not_allowed")
				assertNoRequests(t, h.ups["api"])
				return
			}
			if a.status != tt.want || h.ups["api"].count() != 1 {
				t.Fatalf("status = %d, upstream saw %d; want %d and 1", a.status, h.ups["api"].count(), tt.want)
			}
		})
	}
}

// TestGlobalIPListOverRealConnection: the socket peer (127.0.0.1) is what the lists see.
func TestGlobalIPListOverRealConnection(t *testing.T) {
	for _, tc := range []struct {
		trusted string
		want    int
	}{
		{"", http.StatusForbidden},
		{"client_ip: {trusted_proxies: [127.0.0.1/32]}\n", http.StatusOK},
	} {
		h := newGateway(t, "ip_allowlist: [10.0.0.0/8]\n"+tc.trusted+`
routes:
  - {name: open, match: ["GET /open/"], upstream: api, public: true}
`, "api")
		a := rawRequest(t, h.listen(), requestText("GET", "/open/x", "gw.example", "X-Forwarded-For: 10.1.2.3"))
		if a.status != tc.want {
			t.Errorf("trusted=%q: status = %d, want %d", tc.trusted, a.status, tc.want)
		}
		if tc.want == http.StatusForbidden {
			assertRejected(t, a, 403, "ip_not_allowed")
			assertNoRequests(t, h.ups["api"])
		}
	}
}

func TestRouteIPAllowlist(t *testing.T) {
	h := newGateway(t, `
client_ip: {trusted_proxies: [127.0.0.1/32]}
routes:
  - {name: internal, match: ["GET /internal/"], upstream: internal, public: true, ip_allowlist: [10.0.0.0/8, "fd00::/8"]}
  - {name: open,     match: ["GET /open/"],     upstream: open,     public: true}
`, "internal", "open")
	internal, open := h.ups["internal"], h.ups["open"]
	tests := []struct {
		name, target, remote, xff string
		want                      int
		upstream                  *upstream
	}{
		{"outsider on the internal route", "/internal/x", "127.0.0.1:1", "", 403, nil},
		{"outsider on the open route", "/open/x", "127.0.0.1:1", "", 200, open},
		{"insider through the trusted proxy", "/internal/x", "127.0.0.1:1", "10.9.8.7", 200, internal},
		{"IPv6 insider", "/internal/x", "[fd12::1]:1", "", 200, internal},
		{"IPv6 outsider", "/internal/x", "[fe80::1]:1", "", 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			internal.reset()
			open.reset()
			var hdr []string
			if tt.xff != "" {
				hdr = []string{"X-Forwarded-For: " + tt.xff}
			}
			a := h.do("GET", "http://gw.example"+tt.target, tt.remote, hdr...)
			if tt.want == 403 {
				assertRejected(t, a, 403, "ip_not_allowed")
				assertNoRequests(t, internal, open)
				return
			}
			if a.status != tt.want || tt.upstream.count() != 1 {
				t.Fatalf("status = %d, upstream saw %d; want %d and 1", a.status, tt.upstream.count(), tt.want)
			}
		})
	}
}
