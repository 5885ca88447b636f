package gateway_test

import "testing"

// TestPipelineOrder sends requests that fail several checks and asserts which one wins:
// global IP, then route match (and path cleaning), then route IP, then credential.
func TestPipelineOrder(t *testing.T) {
	h := newGateway(t, `
ip_allowlist: [10.0.0.0/8, 127.0.0.0/8]
ip_denylist: [10.66.0.0/16]
routes:
  - {name: strict,   match: ["GET /strict/"],   upstream: api}
  - {name: internal, match: ["GET /internal/"], upstream: api, ip_allowlist: [10.1.0.0/16]}
`, "api")
	const denied = "10.66.1.1:5000"
	tests := []struct {
		name           string
		method, target string
		remote         string
		headers        []string
		status         int
		code           string
	}{
		{"denied IP + no route + no credential", "GET", "/nowhere", denied, nil, 403, "ip_not_allowed"},
		{"denied IP + bad path", "GET", "/strict/..%2fx", denied, nil, 403, "ip_not_allowed"},
		{"denied IP + bad method", "get", "/strict/x", denied, nil, 403, "ip_not_allowed"},
		{"denied IP + wrong method", "POST", "/strict/x", denied, nil, 403, "ip_not_allowed"},
		{"denied IP + malformed credentials", "GET", "/strict/x", denied, []string{"Authorization: Basic x"}, 403, "ip_not_allowed"},
		{"not allowlisted + no credential", "GET", "/strict/x", "192.0.2.1:5000", nil, 403, "ip_not_allowed"},
		{"no route + no credential", "GET", "/nowhere", "10.1.1.1:5000", nil, 404, "no_route"},
		{"bad path + no credential", "GET", "/strict/..%2fx", "10.1.1.1:5000", nil, 400, "malformed_request"},
		{"wrong method + no credential", "POST", "/strict/x", "10.1.1.1:5000", nil, 405, "method_not_allowed"},
		{"route IP + malformed credentials", "GET", "/internal/x", "10.2.1.1:5000", []string{"Authorization: Basic x"}, 403, "ip_not_allowed"},
		{"route IP ok + no credential", "GET", "/internal/x", "10.1.1.1:5000", nil, 401, "missing_credentials"},
		{"malformed beats invalid", "GET", "/strict/x", "10.1.1.1:5000", []string{"X-API-Key: sk_live_a", "Authorization: Bearer e.y.j"}, 400, "malformed_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// httptest.NewRequest keeps the method and the escaped path as given.
			assertRejected(t, h.do(tt.method, "http://gw.example"+tt.target, tt.remote, tt.headers...), tt.status, tt.code)
		})
	}
	assertNoRequests(t, h.ups["api"])
}
