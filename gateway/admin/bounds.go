package admin

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
)

// keyBounds is what a caller that is itself an API key may give the keys it makes or
// changes: nothing it lacks. Scopes are bounded by mayGrant like every caller's; these are
// the key's other limits, which a token caller does not have.
type keyBounds struct {
	env     string
	ips     []netip.Prefix
	expires *time.Time
}

// boundsOf is the caller key's bounds; nil for callers that are not keys, and for admins,
// who manage every key.
func (a *API) boundsOf(r *http.Request, c caller) (*keyBounds, error) {
	if c.keyID == "" || c.admin() {
		return nil, nil
	}
	k, err := a.o.Keys.Get(r.Context(), c.keyID)
	if err != nil {
		return nil, fmt.Errorf("admin: the calling key: %w", err)
	}
	b := &keyBounds{env: k.Environment, expires: k.ExpiresAt}
	for _, s := range k.AllowedIPs {
		p, err := parseAllowed(s)
		if err != nil {
			return nil, fmt.Errorf("admin: the calling key's allowed_ips: %w", err)
		}
		b.ips = append(b.ips, p)
	}
	return b, nil
}

// defaults fills what a create request left out with the caller key's own limits.
func (b *keyBounds) defaults(req *createRequest) {
	if b == nil {
		return
	}
	if req.Environment == "" {
		req.Environment = b.env
	}
	if req.AllowedIPs == nil && len(b.ips) > 0 {
		ips := make([]string, len(b.ips))
		for i, p := range b.ips {
			ips[i] = p.String()
		}
		req.AllowedIPs = &ips
	}
}

// check refuses k when it is wider than the caller key: no scopes (which for a personal
// key means all of its owner's role), a live key from a test key, IPs outside the caller's
// allowed_ips, or a life beyond the caller's.
func (b *keyBounds) check(k apikey.Key) error {
	if b == nil {
		return nil
	}
	if len(k.Scopes) == 0 {
		return forbidden("a key cannot make a key without scopes (it would have all of its owner's role): list the scopes")
	}
	if b.env == apikey.Test && k.Environment != apikey.Test {
		return forbidden("a test key makes and changes test keys only")
	}
	if len(b.ips) > 0 {
		if len(k.AllowedIPs) == 0 {
			return forbidden("the calling key is limited to allowed_ips; so are the keys it makes")
		}
		for _, s := range k.AllowedIPs {
			p, err := parseAllowed(s)
			if err != nil || !within(p, b.ips) {
				return forbidden(fmt.Sprintf("allowed_ips: %s is outside the calling key's allowed_ips", s))
			}
		}
	}
	if b.expires != nil && (k.ExpiresAt == nil || k.ExpiresAt.After(*b.expires)) {
		return forbidden("the key would outlive the calling key (expires " + b.expires.UTC().Format(time.RFC3339) + "): choose a shorter expires_in_days")
	}
	return nil
}

func parseAllowed(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// within reports whether p lies inside one of outer.
func within(p netip.Prefix, outer []netip.Prefix) bool {
	for _, o := range outer {
		if o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
