package main

import (
	"runtime/debug"
	"strings"
)

// Set at link time by `make build` (-ldflags "-X main.buildCommit=… -X main.buildDate=…");
// empty in a plain `go build`, where the toolchain's VCS stamp is used instead. They are
// the only package variables of the command: the linker can set nothing else.
var (
	buildCommit string // git rev-parse --short HEAD
	buildDate   string // date -u +%Y-%m-%dT%H:%M:%SZ
)

// version is the module version stamped by the Go toolchain, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what `authgate version` prints: the version, the commit and the build
// date. Without link-time values it falls back on the VCS revision and commit time the
// Go toolchain stamps into binaries built in a git checkout ("+dirty": with local
// changes); what neither knows is "unknown".
func versionLine() string {
	commit, date := buildCommit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok && (commit == "" || date == "") {
		var rev, at string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if commit == "" && rev != "" {
			commit = shortRevision(rev)
			if dirty {
				commit += "+dirty"
			}
		}
		if date == "" && at != "" {
			date = at + " (commit time)"
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	var b strings.Builder
	b.WriteString("authgate " + version() + "\n")
	b.WriteString("commit: " + commit + "\n")
	b.WriteString("built:  " + date + "\n")
	return b.String()
}

// shortRevision is rev cut to 7 hex digits, the length `git rev-parse --short` prints
// for small repositories.
func shortRevision(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
