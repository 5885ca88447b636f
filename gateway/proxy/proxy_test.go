package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/porttest"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/reqinfo"
)

// upstream is an httptest server that records every request it receives.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request // clones, bodies unread
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) got() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

func (u *upstream) url(t *testing.T) *url.URL {
	t.Helper()
	pu, err := url.Parse(u.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return pu
}

func newProxy(t *testing.T, up proxy.Upstream) (*proxy.Proxy, *metrics.Metrics) {
	t.Helper()
	if up.Timeout == 0 {
		up.Timeout = 5 * time.Second
	}
	tr := proxy.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	m := metrics.New(prometheus.NewRegistry())
	return proxy.New(up, tr, m, slog.New(slog.DiscardHandler)), m
}

// serve sends r through p with info in its context.
func serve(p http.Handler, r *http.Request, info reqinfo.Info) (*httptest.ResponseRecorder, *reqinfo.Info) {
	ctx, in := reqinfo.New(r.Context())
	*in = info
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r.WithContext(ctx))
	return rec, in
}

func onlyRequest(t *testing.T, u *upstream) *http.Request {
	t.Helper()
	got := u.got()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	return got[0]
}

func TestClientIdentityHeadersNeverForwarded(t *testing.T) {
	up := newUpstream(t, nil)
	p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: up.url(t)})
	r := httptest.NewRequest("GET", "http://gw.example/x", nil)
	forged := []string{"X-Auth-Subject", "X-Auth-Scopes", "x-auth-method", "X-AUTH-KEY-ID", "X-Auth-Anything",
		"X_Auth_Subject", "x_auth_scopes", "X-Auth_Org", "X_Forwarded_For", "X_Request_Id"}
	for _, k := range forged {
		r.Header[k] = []string{"forged"} // raw keys: the spelling a client chose
	}
	r.Header.Set("X-Authorization-Hint", "kept") // not X-Auth-*: a prefix, not a family
	serve(p, r, reqinfo.Info{ID: "rid-1"})
	got := onlyRequest(t, up)
	for k, v := range got.Header {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(n, "x-auth-") || (strings.Contains(k, "_") && slicesContain(v, "forged")) {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if got.Header.Get("X-Authorization-Hint") != "kept" {
		t.Errorf("X-Authorization-Hint = %q, want it forwarded", got.Header.Get("X-Authorization-Hint"))
	}
	if got.Header.Get("X-Request-Id") != "rid-1" {
		t.Errorf("X-Request-Id = %q, want rid-1", got.Header.Get("X-Request-Id"))
	}
}

func slicesContain(vs []string, s string) bool {
	for _, v := range vs {
		if v == s {
			return true
		}
	}
	return false
}

func TestIdentityHeadersSetFromPrincipal(t *testing.T) {
	tests := []struct {
		name string
		info reqinfo.Info
		want map[string]string // "" = absent
	}{
		{
			name: "api key",
			info: reqinfo.Info{ID: "r1", Auth: "api_key", Subject: "user_1", KeyID: "key_1", Scopes: []string{"reports:read", "goals:read"}, Org: "acme", Env: "live"},
			want: map[string]string{"X-Auth-Method": "api_key", "X-Auth-Subject": "user_1", "X-Auth-Key-Id": "key_1",
				"X-Auth-Scopes": "reports:read goals:read", "X-Auth-Org": "acme", "X-Auth-Environment": "live"},
		},
		{
			name: "jwt without org or env",
			info: reqinfo.Info{ID: "r2", Auth: "jwt", Subject: "user_2", Scopes: []string{"*"}},
			want: map[string]string{"X-Auth-Method": "jwt", "X-Auth-Subject": "user_2", "X-Auth-Key-Id": "",
				"X-Auth-Scopes": "*", "X-Auth-Org": "", "X-Auth-Environment": "live"},
		},
		{
			name: "anonymous on a public route",
			info: reqinfo.Info{ID: "r3"},
			want: map[string]string{"X-Auth-Method": "", "X-Auth-Subject": "", "X-Auth-Scopes": "", "X-Auth-Environment": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: up.url(t)})
			r := httptest.NewRequest("GET", "http://gw.example/x", nil)
			r.Header.Set("X-Auth-Subject", "forged")
			r.Header.Set("X-Auth-Key-Id", "forged")
			r.Header.Set("X-Auth-Org", "forged")
			serve(p, r, tt.info)
			got := onlyRequest(t, up)
			for k, v := range tt.want {
				if vs := got.Header.Values(k); (v == "" && len(vs) != 0) || (v != "" && (len(vs) != 1 || vs[0] != v)) {
					t.Errorf("%s = %q, want %q", k, vs, v)
				}
			}
		})
	}
}

func TestCredentialsStrippedUnlessKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		up := newUpstream(t, nil)
		p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: up.url(t)})
		r := httptest.NewRequest("GET", "http://gw.example/x", nil)
		r.Header.Set("Authorization", "Bearer secret-token")
		r.Header.Set("X-API-Key", "sk_live_secret")
		serve(p, r, reqinfo.Info{ID: "r", KeepCredentials: keep})
		got := onlyRequest(t, up)
		wantAuthz, wantKey := "", ""
		if keep {
			wantAuthz, wantKey = "Bearer secret-token", "sk_live_secret"
		}
		if g := got.Header.Get("Authorization"); g != wantAuthz {
			t.Errorf("keep=%v: Authorization = %q, want %q", keep, g, wantAuthz)
		}
		if g := got.Header.Get("X-Api-Key"); g != wantKey {
			t.Errorf("keep=%v: X-API-Key = %q, want %q", keep, g, wantKey)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	tests := []struct {
		name        string
		peerTrusted bool
		wantXFF     string
		wantProto   string
		wantHost    string
		wantOther   string // X-Forwarded-Port, X-Forwarded-Prefix, X-Real-Ip as received
	}{
		{name: "untrusted peer: client's values dropped", wantXFF: "192.0.2.1", wantProto: "http", wantHost: "gw.example:8443", wantOther: ""},
		{name: "trusted peer: chain kept, peer appended", peerTrusted: true, wantXFF: "1.1.1.1, 10.0.0.1, 192.0.2.1", wantProto: "https", wantHost: "orig.example", wantOther: "kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: up.url(t)})
			r := httptest.NewRequest("GET", "http://gw.example:8443/x", nil) // RemoteAddr 192.0.2.1:1234
			r.Header.Set("X-Forwarded-Port", "kept")
			r.Header.Set("X-Forwarded-Prefix", "kept")
			r.Header.Set("X-Real-Ip", "kept")
			r.Header.Set("X_Real_IP", "kept")
			r.Header.Add("X-Forwarded-For", "1.1.1.1")
			r.Header.Add("X-Forwarded-For", "10.0.0.1")
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-Host", "orig.example")
			r.Header.Set("Forwarded", "for=6.6.6.6")
			serve(p, r, reqinfo.Info{ID: "r", PeerTrusted: tt.peerTrusted})
			got := onlyRequest(t, up)
			if g := strings.Join(got.Header.Values("X-Forwarded-For"), ", "); g != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", g, tt.wantXFF)
			}
			if g := got.Header.Get("X-Forwarded-Proto"); g != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", g, tt.wantProto)
			}
			if g := got.Header.Get("X-Forwarded-Host"); g != tt.wantHost {
				t.Errorf("X-Forwarded-Host = %q, want %q", g, tt.wantHost)
			}
			if g := got.Header.Get("Forwarded"); g != "" {
				t.Errorf("Forwarded = %q, want the client's dropped", g)
			}
			for _, k := range []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip", "X_Real_IP"} {
				if g := got.Header.Get(k); g != tt.wantOther {
					t.Errorf("%s = %q, want %q", k, g, tt.wantOther)
				}
			}
		})
	}
}

func TestTrustedProtoMustBeHTTPOrHTTPS(t *testing.T) {
	up := newUpstream(t, nil)
	p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: up.url(t)})
	r := httptest.NewRequest("GET", "http://gw.example/x", nil)
	r.Header.Set("X-Forwarded-Proto", "javascript")
	serve(p, r, reqinfo.Info{ID: "r", PeerTrusted: true})
	if g := onlyRequest(t, up).Header.Get("X-Forwarded-Proto"); g != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", g)
	}
}

func TestForwardsToTargetPath(t *testing.T) {
	up := newUpstream(t, nil)
	u := up.url(t)
	u.Path = "/base"
	p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: u})
	r := httptest.NewRequest("POST", "http://gw.example/v1/items/?q=1", strings.NewReader("body"))
	rec, _ := serve(p, r, reqinfo.Info{ID: "r"})
	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("answer = %d %q, want 200 ok", rec.Code, rec.Body)
	}
	got := onlyRequest(t, up)
	if got.Method != "POST" || got.RequestURI != "/base/v1/items/?q=1" {
		t.Errorf("upstream got %s %s, want POST /base/v1/items/?q=1", got.Method, got.RequestURI)
	}
}

func TestTestEnvironment(t *testing.T) {
	live := newUpstream(t, nil)
	test := newUpstream(t, nil)

	t.Run("no test_url: refused", func(t *testing.T) {
		p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: live.url(t)})
		rec, info := serve(p, httptest.NewRequest("GET", "http://gw.example/x", nil), reqinfo.Info{ID: "rid", Auth: "api_key", Env: "test"})
		assertJSONError(t, rec, http.StatusForbidden, "environment_not_allowed", "rid")
		if info.Reason != "environment_not_allowed" {
			t.Errorf("reason = %q, want environment_not_allowed", info.Reason)
		}
		if n := len(live.got()); n != 0 {
			t.Errorf("live upstream saw %d requests, want 0", n)
		}
	})
	t.Run("test_url: test traffic goes there", func(t *testing.T) {
		p, _ := newProxy(t, proxy.Upstream{Name: "api", URL: live.url(t), TestURL: test.url(t)})
		rec, _ := serve(p, httptest.NewRequest("GET", "http://gw.example/x", nil), reqinfo.Info{ID: "rid", Auth: "api_key", Env: "test"})
		if rec.Code != 200 {
			t.Fatalf("status = %d, want 200", rec.Code)
		}
		if n := len(live.got()); n != 0 {
			t.Errorf("live upstream saw %d requests, want 0", n)
		}
		if g := onlyRequest(t, test).Header.Get("X-Auth-Environment"); g != "test" {
			t.Errorf("X-Auth-Environment = %q, want test", g)
		}
	})
}

func assertJSONError(t *testing.T, rec *httptest.ResponseRecorder, status int, code, rid string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d (body %q)", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if body["error"] != code || body["request_id"] != rid {
		t.Errorf("body = %v, want error %q request_id %q", body, code, rid)
	}
}

func TestUpstreamFailures(t *testing.T) {
	closed := &url.URL{Scheme: "http", Host: porttest.Reserve(t).Addr()} // nothing listens there, nor can start to

	release := make(chan struct{})
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before slow.srv.Close

	t.Run("down", func(t *testing.T) {
		p, m := newProxy(t, proxy.Upstream{Name: "down", URL: closed})
		rec, info := serve(p, httptest.NewRequest("GET", "http://gw.example/x", nil), reqinfo.Info{ID: "rid"})
		assertJSONError(t, rec, http.StatusBadGateway, "upstream_error", "rid")
		if info.Reason != "upstream_error" || info.Upstream != "down" {
			t.Errorf("info = reason %q upstream %q, want upstream_error, down", info.Reason, info.Upstream)
		}
		if n := testutil.CollectAndCount(m.UpstreamDuration); n != 1 {
			t.Errorf("upstream duration series = %d, want 1", n)
		}
		if strings.Contains(rec.Body.String(), closed.Host) {
			t.Errorf("body %q names the upstream address", rec.Body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		p, _ := newProxy(t, proxy.Upstream{Name: "slow", URL: slow.url(t), Timeout: 100 * time.Millisecond})
		rec, info := serve(p, httptest.NewRequest("GET", "http://gw.example/x", nil), reqinfo.Info{ID: "rid"})
		assertJSONError(t, rec, http.StatusGatewayTimeout, "upstream_timeout", "rid")
		if info.Reason != "upstream_timeout" {
			t.Errorf("reason = %q, want upstream_timeout", info.Reason)
		}
	})
	t.Run("client gone", func(t *testing.T) {
		p, _ := newProxy(t, proxy.Upstream{Name: "slow", URL: slow.url(t)})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequestWithContext(ctx, "GET", "http://gw.example/x", nil)
		rec, info := serve(p, r, reqinfo.Info{ID: "rid"})
		if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
			t.Errorf("answer to a departed client = %q %v, want nothing written", rec.Body, rec.Header())
		}
		if info.Status != 499 || info.Reason != "" {
			t.Errorf("info = %d %q, want 499 and no rejection reason", info.Status, info.Reason)
		}
	})
}

func TestStripQueryMethodOverride(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"_method=DELETE", ""},
		{"a=1&_method=DELETE&b=%2F", "a=1&b=%2F"},
		{"_METHOD=DELETE&a=1", "a=1"},
		{"%5Fmethod=DELETE", ""},
		{"_m%65thod=DELETE", ""},
		{".method=DELETE", ""},
		{"+_method=DELETE", ""},
		{"%20.method=DELETE", ""},
		{"_method[]=DELETE&x", "x"},
		{"_method", ""},
		{"_methods=1&method=2&x_method=3", "_methods=1&method=2&x_method=3"},
		{"a=_method", "a=_method"},
	} {
		got, ok := proxy.StripQueryMethodOverride(tc.in)
		if got != tc.out || ok != (tc.in != tc.out) {
			t.Errorf("StripQueryMethodOverride(%q) = %q, %v; want %q", tc.in, got, ok, tc.out)
		}
	}
}
