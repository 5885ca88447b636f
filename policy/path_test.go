package policy_test

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/authgate/authgate/policy"
)

// cleanPathTests is both the unit table and the fuzz seed corpus.
var cleanPathTests = []struct {
	name    string
	in      string
	want    string // "" when CleanPath must refuse
	wantErr bool
}{
	{name: "root", in: "/", want: "/"},
	{name: "plain", in: "/a/b", want: "/a/b"},
	{name: "trailing slash kept", in: "/a/b/", want: "/a/b/"},
	{name: "empty", in: "", wantErr: true},
	{name: "relative", in: "a/b", wantErr: true},
	{name: "double slashes", in: "//a//b", want: "/a/b"},
	{name: "dot segment", in: "/a/./b", want: "/a/b"},
	{name: "dot-dot segment", in: "/a/../b", want: "/b"},
	{name: "dot-dot above root", in: "/../../a", want: "/a"},
	{name: "dot-dot to root", in: "/a/..", want: "/"},
	{name: "trailing dot-dot keeps directory", in: "/a/b/..", want: "/a/"},
	{name: "trailing dot keeps directory", in: "/a/.", want: "/a/"},
	{name: "encoded dot-dot", in: "/%2e%2e/a", want: "/a"},
	{name: "encoded dot-dot mixed case", in: "/a/%2E%2e/b", want: "/b"},
	{name: "half-encoded dot-dot", in: "/a/.%2e/b", want: "/b"},
	{name: "encoded unreserved", in: "/a/%7e%41", want: "/a/~A"},
	{name: "encoded space inside segment", in: "/a%20b/c", want: "/a b/c"},
	{name: "utf-8", in: "/caf%C3%A9/", want: "/café/"},
	{name: "dot file", in: "/.well-known/jwks.json", want: "/.well-known/jwks.json"},
	{name: "dot directory", in: "/a/.hidden/", want: "/a/.hidden/"},
	{name: "encoded percent without hex after", in: "/a%25zz", want: "/a%zz"},
	{name: "encoded percent at end", in: "/a%25", want: "/a%"},

	{name: "encoded slash", in: "/a%2fb", wantErr: true},
	{name: "encoded slash upper", in: "/a/..%2Fb", wantErr: true},
	{name: "encoded backslash", in: "/a%5cb", wantErr: true},
	{name: "encoded backslash upper", in: "/a/..%5Cb", wantErr: true},
	{name: "literal backslash", in: `/a\..\b`, wantErr: true},
	{name: "semicolon", in: "/a/..;/b", wantErr: true},
	{name: "encoded semicolon", in: "/a/..%3b/b", wantErr: true},
	{name: "NUL", in: "/a%00b", wantErr: true},
	{name: "newline", in: "/a%0ab", wantErr: true},
	{name: "DEL", in: "/a%7f", wantErr: true},
	{name: "raw control byte", in: "/a\x01b", wantErr: true},
	{name: "truncated escape", in: "/a%2", wantErr: true},
	{name: "lone percent", in: "/a%", wantErr: true},
	{name: "non-hex escape", in: "/a%zz", wantErr: true},
	{name: "IIS unicode escape", in: "/a/%u002e%u002e/b", wantErr: true},
	{name: "double-encoded dot", in: "/a/%252e%252e/b", wantErr: true},
	{name: "double-encoded slash", in: "/a/..%252fb", wantErr: true},
	{name: "double-encoded with encoded hex digits", in: "/a/%25%32%65%25%32%65/b", wantErr: true},
	{name: "double-encoded with one encoded hex digit", in: "/a/%25%32e/b", wantErr: true},
	{name: "trailing dot segment", in: "/admin./x", wantErr: true},
	{name: "trailing dot at end", in: "/admin.", wantErr: true},
	{name: "encoded trailing dot", in: "/admin%2e/x", wantErr: true},
	{name: "trailing space", in: "/admin%20/x", wantErr: true},
	{name: "three dots", in: "/a/.../b", wantErr: true},
	{name: "overlong utf-8 slash between dots", in: "/a/..%c0%af../b", wantErr: true},
}

func TestCleanPath(t *testing.T) {
	for _, tt := range cleanPathTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policy.CleanPath(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CleanPath(%q) = %q, nil; want ErrMalformedPath", tt.in, got)
				}
				if !errors.Is(err, policy.ErrMalformedPath) {
					t.Fatalf("CleanPath(%q) error = %v, want ErrMalformedPath", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CleanPath(%q) error = %v, want %q", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("CleanPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// forwardedForm is how the gateway puts a cleaned path on the wire to the upstream.
func forwardedForm(p string) string { return (&url.URL{Path: p}).EscapedPath() }

func FuzzCleanPath(f *testing.F) {
	for _, tt := range cleanPathTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := policy.CleanPath(in)
		if err != nil {
			if !errors.Is(err, policy.ErrMalformedPath) {
				t.Fatalf("CleanPath(%q) error = %v, want ErrMalformedPath", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q, want a leading /", in, out)
		}
		for _, bad := range []string{"//", "/./", "/../", "\\", ";"} {
			if strings.Contains(out, bad) {
				t.Fatalf("CleanPath(%q) = %q, contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("CleanPath(%q) = %q, ends in a dot segment", in, out)
		}
		if out != "/" && path.Clean(out) != strings.TrimSuffix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q, but path.Clean gives %q", in, out, path.Clean(out))
		}
		lower := strings.ToLower(out)
		for i := 0; i+2 < len(lower); i++ {
			if lower[i] == '%' && strings.ContainsRune("0123456789abcdef", rune(lower[i+1])) && strings.ContainsRune("0123456789abcdef", rune(lower[i+2])) {
				t.Fatalf("CleanPath(%q) = %q, holds an escape a second decoder would act on", in, out)
			}
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("CleanPath(%q) = %q, holds control byte %#x", in, out, c)
			}
		}
		for seg := range strings.SplitSeq(out, "/") {
			if seg != "" && (strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ")) {
				t.Fatalf("CleanPath(%q) = %q, segment %q ends in '.' or ' '", in, out, seg)
			}
		}
		// Idempotent: a second gateway (or the upstream) reading the forwarded form gets the
		// same path back, so what was authorised is what is served.
		if again, err := policy.CleanPath(forwardedForm(out)); err != nil || again != out {
			t.Fatalf("CleanPath(forwarded %q) = %q, %v; want %q", forwardedForm(out), again, err, out)
		}
		if !strings.Contains(out, "%") {
			if again, err := policy.CleanPath(out); err != nil || again != out {
				t.Fatalf("CleanPath(%q) = %q, %v; not idempotent", out, again, err)
			}
		}
		// Decoding once and cleaning gives the same segments: nothing was decoded twice
		// and no encoded '/' changed the segments.
		if dec, err := url.PathUnescape(in); err == nil && path.Clean(dec) != path.Clean(out) {
			t.Fatalf("CleanPath(%q) = %q, but decoding once gives %q", in, out, path.Clean(dec))
		}
	})
}

func TestCleanHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"admin.example.com", "admin.example.com"},
		{"ADMIN.example.com", "admin.example.com"},
		{"admin.example.com:8080", "admin.example.com"},
		{"admin.example.com.", "admin.example.com"},
		{"Admin.Example.COM.:443", "admin.example.com"},
		{"[::1]:80", "[::1]"},
		{"[::1]", "[::1]"},
		{"[2001:DB8::1]:443", "[2001:db8::1]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := policy.CleanHost(tt.in); got != tt.want {
			t.Errorf("CleanHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMethodOK(t *testing.T) {
	tests := []struct {
		m    string
		want bool
	}{
		{"GET", true},
		{"POST", true},
		{"DELETE", true},
		{"PROPFIND", true},
		{"get", false},
		{"Get", false},
		{"gET", false},
		{"", false},
		{"CONNECT", false},
		{"GET ", false},
		{"G\x00T", false},
	}
	for _, tt := range tests {
		if got := policy.MethodOK(tt.m); got != tt.want {
			t.Errorf("MethodOK(%q) = %v, want %v", tt.m, got, tt.want)
		}
	}
}
