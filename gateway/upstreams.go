package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/balancer"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// upstreamSet is what the upstreams of one configuration compile to: a proxy per upstream
// over its targets. Targets (with their health and in-flight counts) and transports of
// upstreams that a reload leaves alone carry over to the next set.
type upstreamSet struct {
	proxies    map[string]*proxy.Proxy
	targets    map[string]*balancer.Target // by targetKey
	transports map[string]*ownTransport    // by upstream name: upstreams with tls or max_connections
}

// ownTransport is the Transport of an upstream with its own TLS client settings or
// connection bound; the others share the server's.
type ownTransport struct {
	settings string // what it was built from: tls and max_connections
	t        *http.Transport
	rt       http.RoundTripper // t, traced when tracing is on
}

// targetKey names a target across reloads: the same upstream, environment and URL.
func targetKey(upstream, env, u string) string { return upstream + "\x00" + env + "\x00" + u }

// buildUpstreams compiles cfg's upstreams, reusing what prev (the running configuration's
// set; nil at start) has for targets and transports that did not change.
func (s *Server) buildUpstreams(cfg *config.Config, prev *upstreamSet) (*upstreamSet, error) {
	set := &upstreamSet{proxies: map[string]*proxy.Proxy{}, targets: map[string]*balancer.Target{},
		transports: map[string]*ownTransport{}}
	m := balancer.Metrics{Requests: s.metrics.UpstreamRequests, Healthy: s.metrics.UpstreamTargetHealthy}
	target := func(name, env, raw string) (*balancer.Target, error) {
		k := targetKey(name, env, raw)
		if t := set.targets[k]; t != nil {
			return t, nil
		}
		if prev != nil && prev.targets[k] != nil {
			set.targets[k] = prev.targets[k]
			return set.targets[k], nil
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("gateway: upstream %s: %w", name, err)
		}
		t := balancer.NewTarget(name, u, m, s.logger)
		set.targets[k] = t
		return t, nil
	}
	for name, u := range cfg.Upstreams {
		pool := func(env string, urls []string) (*balancer.Pool, error) {
			ts := make([]*balancer.Target, len(urls))
			for i, raw := range urls {
				var err error
				if ts[i], err = target(name, env, raw); err != nil {
					return nil, err
				}
			}
			return balancer.New(balancer.Options{Targets: ts, LeastRequests: u.Balance == "least_requests",
				MaxFailures: u.Health.MaxFailures, EjectFor: u.Health.EjectFor}), nil
		}
		up := proxy.Upstream{Name: name, Timeout: u.Timeout, Strip: cfg.Proxy.StripRequestHeaders}
		var err error
		if up.Live, err = pool("live", u.TargetURLs()); err != nil {
			return nil, err
		}
		if u.TestURL != "" {
			if up.Test, err = pool("test", []string{u.TestURL}); err != nil {
				return nil, err
			}
		}
		rt := s.upstreamRT
		if u.TLS.Enabled() || u.MaxConnections > 0 {
			ot, err := s.ownTransport(name, u, prev)
			if err != nil {
				return nil, err
			}
			set.transports[name] = ot
			rt = ot.rt
		}
		set.proxies[name] = proxy.New(up, rt, s.metrics, s.logger)
	}
	return set, nil
}

// ownTransport returns the Transport of upstream name: prev's when its settings are the
// same and it has no TLS files to re-read (a reload re-reads them, so rotated client
// certificates and CAs apply), else a new one.
func (s *Server) ownTransport(name string, u config.Upstream, prev *upstreamSet) (*ownTransport, error) {
	settings := fmt.Sprintf("%+v/%d", u.TLS, u.MaxConnections)
	if prev != nil && !u.TLS.Enabled() {
		if ot := prev.transports[name]; ot != nil && ot.settings == settings {
			return ot, nil
		}
	}
	tlsCfg, err := u.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("gateway: upstream %s tls: %w", name, err)
	}
	t := proxy.NewTransport()
	t.TLSClientConfig = tlsCfg
	t.MaxConnsPerHost = u.MaxConnections
	return &ownTransport{settings: settings, t: t, rt: s.tracing.Transport(t)}, nil
}

// retire lets go of what set has and next does not: metric series of targets no longer
// configured, idle connections of transports no longer used. Requests in flight on set
// finish normally.
func (set *upstreamSet) retire(next *upstreamSet, s *Server) {
	kept := map[[2]string]bool{}
	for _, t := range next.targets {
		kept[[2]string{t.Upstream(), t.Label}] = true
	}
	for k, t := range set.targets {
		if next.targets[k] != nil || kept[[2]string{t.Upstream(), t.Label}] {
			continue
		}
		for _, o := range balancer.OutcomeLabels() {
			s.metrics.UpstreamRequests.DeleteLabelValues(t.Upstream(), t.Label, o)
		}
		s.metrics.UpstreamTargetHealthy.DeleteLabelValues(t.Upstream(), t.Label)
	}
	for name, ot := range set.transports {
		if next.transports[name] != ot {
			ot.t.CloseIdleConnections()
		}
	}
}

var errStripPrefix = &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error"}

// stripPrefix forwards the request with the route's strip_prefix removed from its path.
// It runs after the route matched and was authorised on the whole cleaned path, and only
// on the copy that is forwarded. Validation makes every pattern of the route start with
// the prefix at a segment boundary; a path that does not is refused (fail closed), and
// the forwarded path always starts with '/'.
func stripPrefix(prefix string, next http.Handler) http.Handler {
	if prefix == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := reqinfo.From(r.Context())
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			info.Reject(w, errStripPrefix)
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		r2.URL = &u
		info.StrippedPrefix = prefix
		next.ServeHTTP(w, r2)
	})
}
