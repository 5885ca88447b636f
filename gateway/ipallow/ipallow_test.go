package ipallow_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/ipallow"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatalf("bad test prefix %q: %v", s, err)
		}
		out[i] = p
	}
	return out
}

// trustedProxies: a local proxy, an internal proxy tier, and an IPv6 proxy range.
var trustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8", "2001:db8:ffff::/48"}

var clientIPTests = []struct {
	name        string
	remote      string
	xff         []string
	want        string // "" = the zero Addr
	wantTrusted bool
}{
	{name: "untrusted peer: XFF ignored", remote: "203.0.113.5:4000", xff: []string{"1.2.3.4"}, want: "203.0.113.5"},
	{name: "untrusted peer claiming a trusted proxy", remote: "203.0.113.5:4000", xff: []string{"10.0.0.9"}, want: "203.0.113.5"},
	{name: "trusted peer without XFF", remote: "127.0.0.1:4000", want: "127.0.0.1", wantTrusted: true},
	{name: "trusted peer, one entry", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "right-most untrusted entry wins over forged left ones", remote: "127.0.0.1:4000", xff: []string{"6.6.6.6, 7.7.7.7, 1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "chain of trusted proxies skipped", remote: "127.0.0.1:4000", xff: []string{"6.6.6.6, 1.2.3.4, 10.0.0.2, 10.1.0.3"}, want: "1.2.3.4", wantTrusted: true},
	{name: "several header lines read as one list", remote: "127.0.0.1:4000", xff: []string{"6.6.6.6, 1.2.3.4", "10.0.0.2"}, want: "1.2.3.4", wantTrusted: true},
	{name: "last header line is right-most", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4", "5.6.7.8"}, want: "5.6.7.8", wantTrusted: true},
	{name: "every entry trusted: the farthest one", remote: "127.0.0.1:4000", xff: []string{"10.0.0.2, 10.0.0.3"}, want: "10.0.0.2", wantTrusted: true},
	{name: "garbage right-most: the peer", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4, garbage"}, want: "127.0.0.1", wantTrusted: true},
	{name: "garbage behind a trusted hop: that hop", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4, unknown, 10.0.0.2"}, want: "10.0.0.2", wantTrusted: true},
	{name: "quoted entry is garbage", remote: "127.0.0.1:4000", xff: []string{`"1.2.3.4"`}, want: "127.0.0.1", wantTrusted: true},
	{name: "hostname is garbage", remote: "127.0.0.1:4000", xff: []string{"evil.example.com"}, want: "127.0.0.1", wantTrusted: true},
	{name: "empty entries skipped", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4, , ", ""}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv4 entry with port", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4:5678"}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv6 entry", remote: "127.0.0.1:4000", xff: []string{"2001:db8::1"}, want: "2001:db8::1", wantTrusted: true},
	{name: "IPv6 entry with port", remote: "127.0.0.1:4000", xff: []string{"[2001:db8::1]:443"}, want: "2001:db8::1", wantTrusted: true},
	{name: "IPv6 entry in brackets", remote: "127.0.0.1:4000", xff: []string{"[2001:db8::1]"}, want: "2001:db8::1", wantTrusted: true},
	{name: "IPv6 entry with zone", remote: "127.0.0.1:4000", xff: []string{"fe80::1%eth0"}, want: "fe80::1", wantTrusted: true},
	{name: "IPv4-mapped entry unmapped", remote: "127.0.0.1:4000", xff: []string{"::ffff:1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv4-mapped trusted entry skipped", remote: "127.0.0.1:4000", xff: []string{"1.2.3.4, ::ffff:10.0.0.2"}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv4-mapped trusted peer", remote: "[::ffff:127.0.0.1]:4000", xff: []string{"1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv4-mapped untrusted peer unmapped", remote: "[::ffff:203.0.113.5]:4000", xff: []string{"1.2.3.4"}, want: "203.0.113.5"},
	{name: "IPv6 trusted peer", remote: "[2001:db8:ffff::1]:4000", xff: []string{"1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "IPv6 untrusted peer", remote: "[2001:db8::5]:4000", xff: []string{"1.2.3.4"}, want: "2001:db8::5"},
	{name: "peer without port", remote: "127.0.0.1", xff: []string{"1.2.3.4"}, want: "1.2.3.4", wantTrusted: true},
	{name: "unreadable peer", remote: "pipe", xff: []string{"1.2.3.4"}, want: ""},
	{name: "empty peer", remote: "", want: ""},
}

func TestResolverClientIP(t *testing.T) {
	rs := ipallow.NewResolver(prefixes(t, trustedProxies...))
	for _, tt := range clientIPTests {
		t.Run(tt.name, func(t *testing.T) {
			got, trusted := rs.ClientIP(tt.remote, tt.xff)
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want || trusted != tt.wantTrusted {
				t.Fatalf("ClientIP(%q, %q) = %v, %v; want %v, %v", tt.remote, tt.xff, got, trusted, want, tt.wantTrusted)
			}
		})
	}
}

func TestResolverWithoutTrustedProxies(t *testing.T) {
	for _, rs := range []*ipallow.Resolver{{}, ipallow.NewResolver(nil)} {
		got, trusted := rs.ClientIP("127.0.0.1:4000", []string{"1.2.3.4"})
		if got != netip.MustParseAddr("127.0.0.1") || trusted {
			t.Errorf("ClientIP = %v, %v; want 127.0.0.1, false", got, trusted)
		}
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.2.3.4", "1.2.3.4"},
		{"1.2.3.4:80", "1.2.3.4"},
		{"::1", "::1"},
		{"[::1]:80", "::1"},
		{"[::1]", "::1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"[::ffff:1.2.3.4]:80", "1.2.3.4"},
		{"", ""},
		{"1.2.3", ""},
		{"1.2.3.4:", ""},
		{"example.com:80", ""},
		{"01.2.3.4", ""},
	}
	for _, tt := range tests {
		want := netip.Addr{}
		if tt.want != "" {
			want = netip.MustParseAddr(tt.want)
		}
		if got := ipallow.ParseAddr(tt.in); got != want {
			t.Errorf("ParseAddr(%q) = %v, want %v", tt.in, got, want)
		}
	}
}

func TestListAdmits(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		addr        string // "" = the zero Addr
		want        bool
	}{
		{name: "empty lists admit all", addr: "8.8.8.8", want: true},
		{name: "empty lists admit unknown", addr: "", want: true},
		{name: "allowlist v4 in", allow: []string{"10.0.0.0/8"}, addr: "10.1.2.3", want: true},
		{name: "allowlist v4 out", allow: []string{"10.0.0.0/8"}, addr: "11.1.2.3", want: false},
		{name: "allowlist v4 does not admit v6", allow: []string{"10.0.0.0/8"}, addr: "2001:db8::1", want: false},
		{name: "allowlist v6 in", allow: []string{"2001:db8::/32"}, addr: "2001:db8:1::5", want: true},
		{name: "allowlist v6 out", allow: []string{"2001:db8::/32"}, addr: "2001:db9::5", want: false},
		{name: "allowlist v6 does not admit v4", allow: []string{"::/0"}, addr: "10.1.2.3", want: false},
		{name: "single v6 host", allow: []string{"2001:db8::7/128"}, addr: "2001:db8::7", want: true},
		{name: "single v6 host, neighbour", allow: []string{"2001:db8::7/128"}, addr: "2001:db8::8", want: false},
		{name: "mixed list v6 in", allow: []string{"10.0.0.0/8", "fd00::/8"}, addr: "fd12::1", want: true},
		{name: "denylist", deny: []string{"10.1.2.3/32"}, addr: "10.1.2.3", want: false},
		{name: "denylist other", deny: []string{"10.1.2.3/32"}, addr: "10.1.2.4", want: true},
		{name: "deny beats allow", allow: []string{"10.0.0.0/8"}, deny: []string{"10.1.0.0/16"}, addr: "10.1.2.3", want: false},
		{name: "allowed beside the denied range", allow: []string{"10.0.0.0/8"}, deny: []string{"10.1.0.0/16"}, addr: "10.2.2.3", want: true},
		{name: "v6 deny", deny: []string{"2001:db8::/32"}, addr: "2001:db8::1", want: false},
		{name: "unknown refused by an allowlist", allow: []string{"0.0.0.0/0", "::/0"}, addr: "", want: false},
		{name: "unknown refused by a denylist", deny: []string{"10.0.0.0/8"}, addr: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ipallow.List{Allow: prefixes(t, tt.allow...), Deny: prefixes(t, tt.deny...)}
			addr := netip.Addr{}
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			if got := l.Admits(addr); got != tt.want {
				t.Fatalf("Admits(%v) = %v, want %v", addr, got, tt.want)
			}
		})
	}
}

func FuzzClientIP(f *testing.F) {
	for _, tt := range clientIPTests {
		f.Add(tt.remote, strings.Join(tt.xff, "\n"))
	}
	rs := ipallow.NewResolver(prefixes(f, trustedProxies...))
	f.Fuzz(func(t *testing.T, remote, header string) {
		var xff []string
		if header != "" {
			xff = strings.Split(header, "\n")
		}
		got, trusted := rs.ClientIP(remote, xff)
		peer := ipallow.ParseAddr(remote)
		if trusted != (peer.IsValid() && rs.Trusted(peer)) {
			t.Fatalf("ClientIP(%q, %q) trusted = %v, peer %v", remote, xff, trusted, peer)
		}
		if !trusted {
			if got != peer {
				t.Fatalf("ClientIP(%q, %q) = %v from an untrusted peer, want the peer %v", remote, xff, got, peer)
			}
			return
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP(%q, %q) = %v, want no zone and no IPv4-mapped form", remote, xff, got)
		}
		if got == peer {
			return
		}
		for _, line := range xff {
			for entry := range strings.SplitSeq(line, ",") {
				if ipallow.ParseAddr(strings.TrimSpace(entry)) == got {
					return
				}
			}
		}
		t.Fatalf("ClientIP(%q, %q) = %v, which is neither the peer nor in the header", remote, xff, got)
	})
}
