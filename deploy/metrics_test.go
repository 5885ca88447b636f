package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/user"
)

// family is one exported metric family: its type and every label its series carry.
type family struct {
	histogram bool
	labels    map[string]bool
	live      bool // seen on a running gateway's /metrics, not only among the descriptors
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true}

// liveFamilies runs a gateway, drives traffic through it so its labelled series exist, and
// reads its /metrics over HTTP. Families that the traffic could not reach (TLS reloads,
// JWKS refreshes, store errors: they need a certificate, an external issuer, a failing
// store) are added from the collectors' descriptors, marked not live.
func liveFamilies(t *testing.T) map[string]*family {
	t.Helper()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	admin, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`
listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store: {type: memory}
issuer: {enabled: true, signing_key_file: %q}
bootstrap: {admin_key: %q, admin_email: "root@example.com", admin_password: "correct horse battery"}
upstreams:
  api: {url: %q, timeout: 5s}
routes:
  - {name: reports, match: ["GET /api/v1/reports/"], upstream: api, scopes: ["reports:read"]}
  - {name: health, match: ["GET /health"], upstream: api, public: true}
`, filepath.Join(dir, "signing-key.pem"), admin, up.URL)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), ConfigPath: cfgPath,
		PasswordParams: &user.TestParams})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base, ops := "http://"+s.Addr().String(), "http://"+s.OpsAddr().String()
	c := &http.Client{Timeout: 10 * time.Second}
	send := func(method, path, body string, hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Allowed, refused (missing, invalid), a created key used twice (cache miss then hit),
	// a failed login, a public route.
	want := func(got, want int, what string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: status %d, want %d", what, got, want)
		}
	}
	want(send("GET", "/api/v1/reports/", "", "X-API-Key", admin), 200, "admin key")
	want(send("GET", "/api/v1/reports/", ""), 401, "no credential")
	bogus, _ := apikey.Generate("sk", apikey.Live)
	want(send("GET", "/api/v1/reports/", "", "X-API-Key", bogus), 401, "unknown key")
	want(send("GET", "/api/v1/reports/", "", "X-API-Key", bogus), 401, "unknown key again")
	want(send("GET", "/health", ""), 200, "public route")
	want(send("POST", "/api/auth/login/", `{"email":"root@example.com","password":"wrong password!"}`), 401, "bad login")
	req, _ := http.NewRequest("POST", base+"/api/auth/api-keys/", strings.NewReader(`{"name":"m","scopes":["reports:read"]}`))
	req.Header.Set("X-API-Key", admin)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Key string `json:"key"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.Key == "" {
		t.Fatalf("create key: status %d", resp.StatusCode)
	}
	want(send("GET", "/api/v1/reports/", "", "X-API-Key", created.Key), 200, "created key")
	want(send("GET", "/api/v1/reports/", "", "X-API-Key", created.Key), 200, "created key again")
	if n := hits.Load(); n != 4 {
		t.Fatalf("upstream saw %d requests, want 4 (the refused ones must not reach it)", n)
	}
	// A reload that works and one that is refused.
	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := os.WriteFile(cfgPath, []byte("routes: [{name: broken}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("a broken config reloaded")
	}

	mresp, err := c.Get(ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(mresp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]*family{}
	for name, mf := range mfs {
		f := &family{histogram: mf.GetType() == dto.MetricType_HISTOGRAM, labels: map[string]bool{}, live: true}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				f.labels[lp.GetName()] = true
			}
		}
		out[name] = f
	}
	for name, f := range descriptorFamilies(t) {
		if _, ok := out[name]; !ok {
			out[name] = f
		}
	}
	return out
}

var descRe = regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)

// descriptorFamilies lists the collectors of metrics.Metrics by their descriptors.
func descriptorFamilies(t *testing.T) map[string]*family {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	out := map[string]*family{}
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			sm := descRe.FindStringSubmatch(d.String())
			if sm == nil {
				t.Fatalf("unreadable descriptor %s", d)
			}
			f := &family{histogram: strings.Contains(v.Field(i).Type().String(), "Histogram"), labels: map[string]bool{}}
			for _, l := range strings.Split(sm[3], ",") {
				if l = strings.TrimSpace(l); l != "" {
					f.labels[l] = true
				}
			}
			out[sm[1]] = f
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metric descriptors found", len(out))
	}
	return out
}

// lookup resolves a name used in PromQL to its family: the family itself, or a
// histogram's _bucket, _sum or _count series. bucket reports a _bucket series (label le).
func lookup(fams map[string]*family, name string) (f *family, bucket bool) {
	if f, ok := fams[name]; ok {
		return f, false
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f, ok := fams[base]; ok && f.histogram {
				return f, suf == "_bucket"
			}
		}
	}
	return nil, false
}

var (
	metricRe   = regexp.MustCompile(`\b(authgate_[a-zA-Z0-9_]+)\b`)
	selectorRe = regexp.MustCompile(`\b([a-zA-Z_][a-zA-Z0-9_]*)\{([^}]*)\}`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	templateRe = regexp.MustCompile(`\{\{\s*\$?labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}|\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// checkExpr checks one PromQL expression: every authgate_ name is exported, every label in
// a selector is one that metric carries, and every label the expression groups or matches
// by, or that templates print, is carried by one of its metrics. It returns the metrics used.
func checkExpr(t *testing.T, fams map[string]*family, where, expr string, templates ...string) []string {
	t.Helper()
	names := metricRe.FindAllString(expr, -1)
	avail := map[string]bool{}
	for k := range targetLabels {
		avail[k] = true
	}
	for _, n := range names {
		f, bucket := lookup(fams, n)
		if f == nil {
			t.Errorf("%s: %s is not a metric authgate exports", where, n)
			continue
		}
		for l := range f.labels {
			avail[l] = true
		}
		if bucket {
			avail["le"] = true
		}
	}
	for _, sm := range selectorRe.FindAllStringSubmatch(expr, -1) {
		f, bucket := lookup(fams, sm[1])
		if f == nil {
			if sm[1] == "up" { // Prometheus's own per-target series
				continue
			}
			if !strings.HasPrefix(sm[1], "authgate_") {
				t.Errorf("%s: selector on %s, which is not an authgate metric", where, sm[1])
			}
			continue
		}
		for _, mm := range matcherRe.FindAllStringSubmatch(sm[2], -1) {
			l := mm[1]
			if !f.labels[l] && !targetLabels[l] && !(bucket && l == "le") {
				t.Errorf("%s: %s has no label %q", where, sm[1], l)
			}
		}
	}
	for _, sm := range groupingRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(sm[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !avail[l] {
				t.Errorf("%s: groups by %q, which none of %v carries", where, l, names)
			}
		}
	}
	for _, text := range templates {
		for _, sm := range templateRe.FindAllStringSubmatch(text, -1) {
			l := sm[1] + sm[2]
			if !avail[l] {
				t.Errorf("%s: template prints label %q, which none of %v carries", where, l, names)
			}
		}
	}
	return names
}

// TestRulesAndDashboardUseExportedMetrics checks every metric and label of
// deploy/prometheus/alerts.yaml and deploy/grafana/authgate.json against a running
// gateway's /metrics (and, for the few families that need a certificate, an external
// issuer or a failing store to appear, the registered descriptors).
func TestRulesAndDashboardUseExportedMetrics(t *testing.T) {
	fams := liveFamilies(t)
	var notLive []string
	for n, f := range fams {
		if strings.HasPrefix(n, "authgate_") && !f.live {
			notLive = append(notLive, n)
		}
	}
	sort.Strings(notLive)
	t.Logf("checked against descriptors only (no series in the live scrape): %v", notLive)
	for _, must := range []string{"authgate_requests_total", "authgate_rejected_requests_total",
		"authgate_request_duration_seconds", "authgate_upstream_duration_seconds", "authgate_config_reloads_total",
		"authgate_credential_cache_total", "authgate_logins_total", "authgate_api_key_events_total"} {
		if f := fams[must]; f == nil || !f.live {
			t.Errorf("%s has no series on the live /metrics after the traffic the test sent", must)
		}
	}

	used := map[string]bool{}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yaml"), &rules); err != nil {
		t.Fatal(err)
	}
	nrules := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			nrules++
			var tmpl []string
			for _, a := range r.Annotations {
				tmpl = append(tmpl, a)
			}
			for _, n := range checkExpr(t, fams, "alert "+r.Alert, r.Expr, tmpl...) {
				used[n] = true
			}
		}
	}
	if nrules < 10 {
		t.Fatalf("only %d alert rules read", nrules)
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, "grafana/authgate.json"), &dash); err != nil {
		t.Fatal(err)
	}
	nexpr := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			nexpr++
			// Grafana variables ($instance, $route, $__rate_interval) are not PromQL.
			for _, n := range checkExpr(t, fams, "panel "+p.Title, tg.Expr, tg.LegendFormat) {
				used[n] = true
			}
		}
	}
	if nexpr < 20 {
		t.Fatalf("only %d dashboard queries read", nexpr)
	}
	labelValues := regexp.MustCompile(`label_values\((\w+),\s*(\w+)\)`)
	for _, v := range dash.Templating.List {
		if sm := labelValues.FindStringSubmatch(v.Definition); sm != nil {
			checkExpr(t, fams, "variable "+v.Name, sm[1]+" by ("+sm[2]+")")
		}
	}
	// The dashboard and the rules between them watch what the gateway is built to report.
	for _, must := range []string{"authgate_rejected_requests_total", "authgate_store_up", "authgate_rate_limit_fallback",
		"authgate_tls_certificate_expiry_seconds", "authgate_credential_cache_total", "authgate_credential_cache_trusted",
		"authgate_invalidation_lag_seconds_bucket", "authgate_config_reloads_total", "authgate_upstream_duration_seconds_bucket"} {
		if !used[must] {
			t.Errorf("neither the rules nor the dashboard use %s", must)
		}
	}
}
