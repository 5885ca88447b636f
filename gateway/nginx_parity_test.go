package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// errorCode is the "error" of a gateway error answer, "" for any other body.
func errorCode(a answer) string {
	var b struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(a.body, &b)
	return b.Error
}

// TestNginxForwardAuthSameDecisionAsProxyMode: behind the real nginx running the
// configuration of docs/forward-auth.md, a good key, no credential, an unknown key, a
// revoked key, a key without the route's scope and a key over its rate limit each get the
// decision the same gateway gives in proxy mode: the same status and error code in the
// gateway's answer, the status nginx shows the client (2xx, 401 and 403 as they are; any
// other refusal as 500, which nginx's auth_request makes of it, as the page says), and no
// refused request reaches the upstream.
func TestNginxForwardAuthSameDecisionAsProxyMode(t *testing.T) {
	f := startNginxFront(t)
	create := func(body string) keyAnswer { return f.h.createKeyWith(f.admin, body) }
	good := create(`{"name":"good","scopes":["reports:read"]}`)
	revoked := create(`{"name":"revoked","scopes":["reports:read"]}`)
	r := httpRequest(t, "DELETE", "/api/auth/api-keys/"+revoked.ID+"/", "")
	r.Header.Set("X-API-Key", f.admin)
	if a := f.h.serve(r); a.status/100 != 2 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	narrow := create(`{"name":"narrow","scopes":["dashboards:read"]}`)
	// Two keys limited to one request a minute: one spends its request in proxy mode, the
	// other through nginx, so neither mode's count decides the other's.
	limitedProxy := create(`{"name":"lp","scopes":["reports:read"],"rate_limit":{"requests":1,"per":"1m"}}`)
	limitedNginx := create(`{"name":"ln","scopes":["reports:read"],"rate_limit":{"requests":1,"per":"1m"}}`)
	unknown := newAdminKey(t) // well-formed, never registered

	cases := []struct {
		name              string
		proxyCred         string // header for proxy mode ("" = none)
		nginxCred         string // header through nginx
		spendFirst        bool   // send one allowed request first (rate limit)
		wantStatus        int
		wantCode          string
		wantNginx         int // what the client sees from nginx
		wantUpstreamProxy int // upstream hits of the proxy-mode request
	}{
		{"good key", "X-API-Key: " + good.Key, "X-API-Key: " + good.Key, false, 200, "", 200, 1},
		{"missing credential", "", "", false, 401, "missing_credentials", 401, 0},
		{"unknown key", "X-API-Key: " + unknown, "X-API-Key: " + unknown, false, 401, "invalid_api_key", 401, 0},
		{"revoked key", "X-API-Key: " + revoked.Key, "X-API-Key: " + revoked.Key, false, 401, "revoked_api_key", 401, 0},
		{"out of scope", "X-API-Key: " + narrow.Key, "X-API-Key: " + narrow.Key, false, 403, "insufficient_scope", 403, 0},
		{"rate limited", "X-API-Key: " + limitedProxy.Key, "X-API-Key: " + limitedNginx.Key, true, 429, "rate_limited", 500, 0},
	}
	const target = "/api/v1/reports/"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := func(h string) []string {
				if h == "" {
					return nil
				}
				return []string{h}
			}
			// Proxy mode: the gateway itself in front of the upstream.
			if tc.spendFirst {
				if a := f.h.do("GET", target, "", hdr(tc.proxyCred)...); a.status != 200 {
					t.Fatalf("proxy mode, first request: %d %s", a.status, a.body)
				}
			}
			f.api.reset()
			p := f.h.do("GET", target, "", hdr(tc.proxyCred)...)
			if p.status != tc.wantStatus || errorCode(p) != tc.wantCode {
				t.Fatalf("proxy mode: %d %q, want %d %q (%s)", p.status, errorCode(p), tc.wantStatus, tc.wantCode, p.body)
			}
			if tc.wantCode != "" {
				assertRejected(t, p, tc.wantStatus, tc.wantCode)
			}
			if got := f.api.count(); got != tc.wantUpstreamProxy {
				t.Fatalf("proxy mode: upstream saw %d requests, want %d", got, tc.wantUpstreamProxy)
			}

			// Forward-auth: nginx asks the gateway, then forwards or refuses.
			if tc.spendFirst {
				if a := f.through(t, "GET", target, "", hdr(tc.nginxCred)...); a.status != 200 {
					t.Fatalf("nginx, first request: %d %s", a.status, a.body)
				}
			}
			f.checks.take()
			f.api.reset()
			n := f.through(t, "GET", target, "", hdr(tc.nginxCred)...)
			check := f.oneCheck(t)
			if check.status != p.status || errorCode(check) != errorCode(p) {
				t.Errorf("forward-auth decided %d %q, proxy mode %d %q", check.status, errorCode(check), p.status, errorCode(p))
			}
			if tc.wantCode != "" {
				assertRejected(t, check, tc.wantStatus, tc.wantCode)
			}
			if n.status != tc.wantNginx {
				t.Errorf("nginx answered the client %d, want %d", n.status, tc.wantNginx)
			}
			wantHits := 0
			if tc.wantStatus == http.StatusOK {
				wantHits = 1
			}
			if got := f.api.count(); got != wantHits {
				t.Errorf("through nginx the upstream saw %d requests, want %d", got, wantHits)
			}
		})
	}
}
