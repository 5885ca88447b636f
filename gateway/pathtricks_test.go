package gateway_test

import (
	"net/http"
	"testing"
)

// pathTrickConfig has weak public routes next to strict ones. A request may reach the
// strict upstream only with a credential (none exists here), so every trick must end as a
// 400, a 401 on the strict route, or a forward to the weak upstream of a path that does
// not name the strict resource.
const pathTrickConfig = `
routes:
  - {name: public-weak,  match: ["GET /public/"],               upstream: weak, public: true}
  - {name: admin-strict, match: ["GET /admin/"],                upstream: strict}
  - {name: admin-host,   match: ["admin.example.com/public/"],  upstream: strict}
  - {name: ops-host,     match: ["Ops.Example.com/public/"],    upstream: strict}
  - {name: files-weak,   match: ["/files/"],                    upstream: weak, public: true}
  - {name: files-secret, match: ["GET /files/secret/"],         upstream: strict}
`

func TestPathTricks(t *testing.T) {
	h := newGateway(t, pathTrickConfig, "weak", "strict")
	weak, strict := h.ups["weak"], h.ups["strict"]
	addr := h.listen()

	const (
		refused   = http.StatusBadRequest
		needsCred = http.StatusUnauthorized
		forwarded = http.StatusOK
		// refusedByServer is a 400 from net/http itself, not a gateway JSON error.
		refusedByServer = -400
	)
	tests := []struct {
		name    string
		method  string // default GET
		target  string
		host    string // default gw.example
		want    int
		code    string // for refusals
		weakURI string // with forwarded: what the weak upstream must receive
	}{
		{name: "control: weak route", target: "/public/x", want: forwarded, weakURI: "/public/x"},
		{name: "control: strict route", target: "/admin/x", want: needsCred, code: "missing_credentials"},
		{name: "double slash stays under /public/", target: "/public//admin/x", want: forwarded, weakURI: "/public/admin/x"},
		{name: "leading double slash", target: "//admin/x", want: needsCred, code: "missing_credentials"},
		{name: "dot-dot", target: "/public/../admin/x", want: needsCred, code: "missing_credentials"},
		{name: "dot then dot-dot", target: "/public/./../admin/x", want: needsCred, code: "missing_credentials"},
		{name: "dot-dot past the root", target: "/public/../../../admin/x", want: needsCred, code: "missing_credentials"},
		{name: "encoded dot-dot", target: "/public/%2e%2e/admin/x", want: needsCred, code: "missing_credentials"},
		{name: "encoded dot-dot mixed-case hex", target: "/public/%2E%2e/admin/x", want: needsCred, code: "missing_credentials"},
		{name: "half-encoded dot-dot", target: "/public/.%2e/admin/x", want: needsCred, code: "missing_credentials"},
		{name: "upper-case weak prefix then dot-dot", target: "/PUBLIC/../admin/x", want: needsCred, code: "missing_credentials"},
		{name: "encoded dot-dot to the root", target: "/public/%2e%2e", want: http.StatusNotFound, code: "no_route"},
		{name: "absolute-form with dot-dot", target: "http://gw.example/public/../admin/x", want: needsCred, code: "missing_credentials"},
		{name: "encoded slash after dot-dot", target: "/public/..%2fadmin/x", want: refused, code: "malformed_request"},
		{name: "encoded slash upper-case", target: "/public/..%2Fadmin/x", want: refused, code: "malformed_request"},
		{name: "encoded slashes around dot-dot", target: "/public%2f..%2fadmin/x", want: refused, code: "malformed_request"},
		{name: "all encoded", target: "/public/%2e%2e%2fadmin/x", want: refused, code: "malformed_request"},
		{name: "encoded slash with a byte Go re-escapes", target: "/public/..%2fadmin/x|", want: refused, code: "malformed_request"},
		{name: "encoded slash into weak with a byte Go re-escapes", target: "/admin%2f..%2fpublic/x|", want: refused, code: "malformed_request"},
		{name: "servlet path parameter", target: "/public/..;/admin/x", want: refused, code: "malformed_request"},
		{name: "encoded path parameter", target: "/public/..%3b/admin/x", want: refused, code: "malformed_request"},
		{name: "encoded backslash", target: "/public/..%5cadmin/x", want: refused, code: "malformed_request"},
		{name: "literal backslashes", target: `/public\..\admin/x`, want: refused, code: "malformed_request"},
		{name: "NUL", target: "/public/..%00/admin/x", want: refused, code: "malformed_request"},
		{name: "trailing dot segment", target: "/admin./x", want: refused, code: "malformed_request"},
		{name: "encoded trailing dot segment", target: "/admin%2e/x", want: refused, code: "malformed_request"},
		{name: "trailing space segment", target: "/admin%20/x", want: refused, code: "malformed_request"},
		{name: "double-encoded dot-dot", target: "/public/%252e%252e/admin/x", want: refused, code: "malformed_request"},
		{name: "double-encoded slash", target: "/public/..%252fadmin/x", want: refused, code: "malformed_request"},
		{name: "double-encoded via encoded hex digits", target: "/public/%25%32%65%25%32%65/admin/x", want: refused, code: "malformed_request"},
		{name: "overlong UTF-8 slash", target: "/public/..%c0%af../admin/x", want: refused, code: "malformed_request"},
		// Go's HTTP server refuses an invalid escape itself (plain-text 400) before the
		// gateway sees it; what matters is that nothing is forwarded.
		{name: "IIS %u escape", target: "/public/%u002e%u002e/admin/x", want: refusedByServer},
		{name: "lone percent", target: "/public/%/../admin/x", want: refusedByServer},
		{name: "host in upper case", target: "/public/x", host: "ADMIN.example.com", want: needsCred, code: "missing_credentials"},
		{name: "host with trailing dot and port", target: "/public/x", host: "admin.example.com.:8080", want: needsCred, code: "missing_credentials"},
		{name: "pattern host written in mixed case", target: "/public/x", host: "ops.example.com", want: needsCred, code: "missing_credentials"},
		{name: "control: other host stays weak", target: "/public/x", host: "www.example.com", want: forwarded, weakURI: "/public/x"},
		{name: "lower-case method vs method-less weak route", method: "get", target: "/files/secret/x", want: refused, code: "malformed_request"},
		{name: "mixed-case method", method: "Get", target: "/files/secret/x", want: refused, code: "malformed_request"},
		{name: "control: GET on the strict files route", target: "/files/secret/x", want: needsCred, code: "missing_credentials"},
		{name: "control: other method on weak files route", method: "POST", target: "/files/x", want: forwarded, weakURI: "/files/x"},
		{name: "POST into the strict subtree takes the weak route as written", method: "POST", target: "/files/secret/x", want: forwarded, weakURI: "/files/secret/x"},
		{name: "dot-dot from weak files into secret", target: "/files/x/../secret/y", want: needsCred, code: "missing_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weak.reset()
			method, host := tt.method, tt.host
			if method == "" {
				method = "GET"
			}
			if host == "" {
				host = "gw.example"
			}
			headers := []string{}
			if method != "GET" && method != "get" && method != "Get" {
				headers = append(headers, "Content-Length: 0")
			}
			a := rawRequest(t, addr, requestText(method, tt.target, host, headers...))
			switch tt.want {
			case forwarded:
				if a.status != http.StatusOK {
					t.Fatalf("status = %d, want 200 from the weak upstream (body %s)", a.status, a.body)
				}
				got := weak.requests()
				if len(got) != 1 || got[0].RequestURI != tt.weakURI {
					t.Fatalf("weak upstream got %+v, want exactly %q", got, tt.weakURI)
				}
			case refusedByServer:
				if a.status != http.StatusBadRequest {
					t.Errorf("status = %d, want 400 (body %s)", a.status, a.body)
				}
				assertNoRequests(t, weak)
			default:
				assertRejected(t, a, tt.want, tt.code)
				if tt.want == needsCred && a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				assertNoRequests(t, weak)
			}
			assertNoRequests(t, strict)
		})
	}
}

// TestPathForwardedAsCleaned: what is matched is what is forwarded, query untouched.
func TestPathForwardedAsCleaned(t *testing.T) {
	h := newGateway(t, pathTrickConfig, "weak", "strict")
	weak := h.ups["weak"]
	addr := h.listen()
	tests := []struct{ target, want string }{
		{"/public/a/./b/../c?x=%2e%2e/../&y=1", "/public/a/c?x=%2e%2e/../&y=1"},
		{"/public/%61%62c", "/public/abc"},
		{"/public/a%20b", "/public/a%20b"},
		{"/public/caf%C3%A9/", "/public/caf%C3%A9/"},
		{"/public/a%25zz", "/public/a%25zz"},
		{"/public/a/..", "/public/"},
	}
	for _, tt := range tests {
		weak.reset()
		a := rawRequest(t, addr, requestText("GET", tt.target, "gw.example"))
		if a.status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tt.target, a.status)
			continue
		}
		if got := weak.requests(); len(got) != 1 || got[0].RequestURI != tt.want {
			t.Errorf("GET %s: upstream got %+v, want %q", tt.target, got, tt.want)
		}
	}
}
