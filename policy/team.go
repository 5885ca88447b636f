package policy

import "strings"

// PathValue returns the value of the single-segment wildcard {name} of ServeMux pattern
// in path, which the pattern matched and which is already clean (CleanPath): the segment
// of path at the wildcard's position. ok is false when the pattern has no such wildcard.
func PathValue(pattern, path, name string) (value string, ok bool) {
	pp := pattern
	if i := strings.IndexAny(pp, " \t"); i >= 0 {
		pp = strings.TrimLeft(pp[i:], " \t")
	}
	i := strings.IndexByte(pp, '/')
	if i < 0 {
		return "", false
	}
	pp = pp[i:]
	want := "{" + name + "}"
	for pos := 0; ; pos++ {
		seg, rest, more := strings.Cut(pp, "/")
		if seg == want {
			return pathSegment(path, pos)
		}
		if !more {
			return "", false
		}
		pp = rest
	}
}

// pathSegment is segment n of path split at '/' (segment 0 is what precedes the first
// '/', "" for an absolute path).
func pathSegment(path string, n int) (string, bool) {
	for range n {
		_, rest, more := strings.Cut(path, "/")
		if !more {
			return "", false
		}
		path = rest
	}
	seg, _, _ := strings.Cut(path, "/")
	return seg, true
}
