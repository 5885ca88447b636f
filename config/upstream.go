package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// validateUpstream checks one entry of upstreams: its target or targets, balancing,
// passive health, connection bound and TLS client settings.
func (c *Config) validateUpstream(ps *problems, p string, u Upstream) {
	switch {
	case u.URL != "" && len(u.Targets) > 0:
		ps.add(p+".targets", "set url (one target) or targets (several), not both")
	case u.URL == "" && len(u.Targets) == 0:
		ps.add(p+".url", "required (or targets: a list of URLs)")
	case u.URL != "":
		checkURL(ps, p+".url", u.URL, true)
	default:
		checkTargets(ps, p+".targets", u.Targets)
	}
	checkURL(ps, p+".test_url", u.TestURL, false)
	checkPositiveOrOmit(ps, p+".timeout", u.Timeout, "30s")
	checkOneOf(ps, p+".balance", u.Balance, "round_robin", "least_requests")
	if u.Health.MaxFailures < 1 {
		ps.add(p+".health.max_failures", "must be >= 1, got %d (leave it out for the default 1)", u.Health.MaxFailures)
	}
	checkPositiveOrOmit(ps, p+".health.eject_for", u.Health.EjectFor, "10s")
	if u.MaxConnections < 0 {
		ps.add(p+".max_connections", "must not be negative, got %d (0: no bound)", u.MaxConnections)
	}
	if u.TLS.Enabled() {
		https := u.TestURL != "" && strings.HasPrefix(u.TestURL, "https://")
		for _, t := range u.TargetURLs() {
			https = https || strings.HasPrefix(t, "https://")
		}
		if !https {
			ps.add(p+".tls", "applies to https:// targets, and this upstream has none")
		}
		if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
			ps.add(p+".tls", "cert_file and key_file go together: set both or neither")
		} else if _, err := u.TLS.ClientConfig(); err != nil {
			ps.add(p+".tls", "%v", err)
		}
	}
}

// checkTargets checks upstreams.X.targets: each an http(s) URL, all with the same scheme
// and path (a target is a server of the same API, so only host:port differs), no
// host:port twice.
func checkTargets(ps *problems, p string, targets []string) {
	var first *url.URL
	seen := map[string]int{}
	for i, raw := range targets {
		tp := fmt.Sprintf("%s[%d]", p, i)
		n := len(*ps)
		checkURL(ps, tp, raw, true)
		if len(*ps) > n {
			continue
		}
		u, _ := url.Parse(raw) // checkURL parsed it
		if j, dup := seen[u.Host]; dup {
			ps.add(tp, "%s is also targets[%d]", u.Host, j)
			continue
		}
		seen[u.Host] = i
		if first == nil {
			first = u
			continue
		}
		if u.Scheme != first.Scheme || strings.TrimSuffix(u.Path, "/") != strings.TrimSuffix(first.Path, "/") {
			ps.add(tp, "every target needs the same scheme and path as targets[0] (%s://…%s); only host:port differs", first.Scheme, first.Path)
		}
	}
}

// ClientConfig is the TLS client configuration t describes, with its files read: nil
// when t sets nothing. The CA file must hold at least one PEM certificate, the
// certificate and key must match.
func (t UpstreamTLS) ClientConfig() (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, errors.New("cert_file and key_file go together: set both or neither")
		}
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// checkStripPrefix checks routes[i].strip_prefix: a plain path without a trailing '/',
// that the path of every pattern of the route starts with at a segment boundary, so that
// every path the route matches starts with it and loses exactly that.
func checkStripPrefix(ps *problems, p string, r Route) {
	sp := r.StripPrefix
	if !strings.HasPrefix(sp, "/") || strings.ContainsAny(sp, " {}?#%;\\") || sp == "/" || strings.HasSuffix(sp, "/") ||
		strings.Contains(sp, "//") || strings.Contains(sp, "/./") || strings.Contains(sp, "/../") ||
		strings.HasSuffix(sp, "/.") || strings.HasSuffix(sp, "/..") {
		ps.add(p+".strip_prefix", "must be a plain path such as \"/billing\": starting with '/', not ending with '/', no wildcard, escape or dot segment; got %q", sp)
		return
	}
	for j, m := range r.Match {
		path := patternPath(m)
		if path != sp && !strings.HasPrefix(path, sp+"/") {
			ps.add(fmt.Sprintf("%s.match[%d]", p, j), "does not start with strip_prefix %q: every pattern of the route must (e.g. \"%s/{rest...}\")", sp, sp)
		}
	}
}

// patternPath is the path part of a ServeMux pattern "[METHOD ][HOST]/path".
func patternPath(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return pattern
}
