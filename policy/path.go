// Package policy decides which route a request belongs to and what that route needs:
// path cleaning, ServeMux pattern matching and (later) scope decisions. It is pure: no
// I/O, no state beyond what Compile builds.
package policy

import (
	"errors"
	"path"
	"strings"
)

// ErrMalformedPath is returned by CleanPath for paths that cannot be cleaned unambiguously.
var ErrMalformedPath = errors.New("policy: malformed path")

// CleanPath turns a request's escaped path into the one form that is both matched and
// forwarded: percent-escapes decoded, "//", "/./" and "/../" resolved, a trailing slash
// kept. What is authorised is then exactly what the upstream is asked for.
//
// Paths whose meaning depends on who decodes them are refused with ErrMalformedPath rather
// than guessed at, because an upstream may read them differently than the router:
//   - an encoded '/' or '\' (%2F, %5C) would change the segments after decoding;
//   - an encoded '%' followed by hex digits (%252e) decodes to an escape a second time;
//   - a literal '\' is a separator to some servers;
//   - ';' starts path parameters that servlet containers strip ("/..;/admin");
//   - control characters and NUL;
//   - a segment ending in '.' or ' ' ("admin.", "admin%20") is the same file as "admin" to
//     Windows servers.
func CleanPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", ErrMalformedPath
	}
	if isClean(escaped) {
		return escaped, nil // the common case: nothing to decode or resolve, no allocation
	}
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", ErrMalformedPath
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			if c == '/' || c == '\\' {
				return "", ErrMalformedPath
			}
		}
		if c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return "", ErrMalformedPath
		}
		b.WriteByte(c)
	}
	decoded := b.String()
	// Checked on the decoded form, not the escaped one: "%25%32%65" decodes to "%2e" just
	// as "%252e" does, and an upstream that decodes again would read it as '.'.
	for i := 0; i+2 < len(decoded); i++ {
		if decoded[i] == '%' && isHex(decoded[i+1]) && isHex(decoded[i+2]) {
			return "", ErrMalformedPath
		}
	}
	clean := path.Clean(decoded)
	if clean != "/" && (strings.HasSuffix(decoded, "/") || strings.HasSuffix(decoded, "/.") || strings.HasSuffix(decoded, "/..")) {
		clean += "/"
	}
	for seg := range strings.SplitSeq(clean, "/") {
		if seg != "" && (seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ') {
			return "", ErrMalformedPath
		}
	}
	return clean, nil
}

// isClean reports whether p has nothing CleanPath would change or refuse.
func isClean(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%' || c == '\\' || c == ';' || c < 0x20 || c == 0x7f:
			return false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			return false
		case (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/'):
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// CleanHost lowercases a Host header's name and drops its port and a trailing dot, so
// "ADMIN.example.com.:443" matches a pattern for "admin.example.com" and cannot fall
// through to a weaker route that an upstream would serve from the same virtual host.
func CleanHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
