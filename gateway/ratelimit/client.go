package ratelimit

import "net/netip"

// ClientKey is the part of a bucket key that names a client address: the address itself,
// or for IPv6 its /64, since one host usually holds a whole one. ip is the client address
// after the trusted-proxy walk. An invalid ip gives "".
func ClientKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	p := netip.PrefixFrom(ip, ip.BitLen())
	if ip.Is6() && !ip.Is4In6() {
		p, _ = ip.Prefix(64)
	}
	return p.String()
}
