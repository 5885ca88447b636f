// Package ipallow resolves the client's IP address behind trusted proxies and admits or
// refuses requests by IP lists.
package ipallow

import (
	"net/netip"
	"strings"
)

// Resolver finds the client address of a request. The zero value trusts no proxy.
// A Resolver is immutable and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a Resolver that believes X-Forwarded-For only from peers in trusted.
func NewResolver(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// Trusted reports whether addr is one of the trusted proxies.
func (rs *Resolver) Trusted(addr netip.Addr) bool {
	return Contains(rs.trusted, addr)
}

// ClientIP returns the client address for a connection from remoteAddr ("ip:port", as in
// http.Request.RemoteAddr) carrying the X-Forwarded-For values xff.
//
// The peer is the client unless it is a trusted proxy. Then X-Forwarded-For is read from
// the right, skipping trusted proxies, and the first untrusted address is the client:
// every address left of it was written by someone we do not trust and may be forged. An
// entry that is not an address stops the walk at the last trusted hop, which is who
// forwarded it. The zero Addr means remoteAddr itself was unreadable. peerTrusted reports
// whether the socket peer is a trusted proxy.
func (rs *Resolver) ClientIP(remoteAddr string, xff []string) (client netip.Addr, peerTrusted bool) {
	peer := ParseAddr(remoteAddr)
	if !peer.IsValid() || len(rs.trusted) == 0 || !rs.Trusted(peer) {
		return peer, false
	}
	client = peer
	for i := len(xff) - 1; i >= 0; i-- {
		entries := xff[i]
		for entries != "" {
			var entry string
			if j := strings.LastIndexByte(entries, ','); j >= 0 {
				entry, entries = entries[j+1:], entries[:j]
			} else {
				entry, entries = entries, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a := ParseAddr(entry)
			if !a.IsValid() {
				return client, true
			}
			client = a
			if !rs.Trusted(a) {
				return a, true
			}
		}
	}
	return client, true
}

// ParseAddr reads "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80" or "[fe80::1%eth0]:80",
// dropping the port and zone and unmapping IPv4-in-IPv6. It returns the zero Addr on error.
func ParseAddr(s string) netip.Addr {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// Contains reports whether addr lies in any of prefixes.
func Contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// List is an allow list and a deny list. The zero List admits everyone.
type List struct {
	Allow []netip.Prefix // empty: everyone not denied
	Deny  []netip.Prefix
}

// Admits reports whether addr may pass. An unknown (zero) address is refused by any
// non-empty list: when in doubt, reject.
func (l List) Admits(addr netip.Addr) bool {
	if len(l.Allow) == 0 && len(l.Deny) == 0 {
		return true
	}
	if !addr.IsValid() || Contains(l.Deny, addr) {
		return false
	}
	return len(l.Allow) == 0 || Contains(l.Allow, addr)
}
