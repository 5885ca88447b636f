package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository's top directory (this package is cmd/authgate).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestVersionMakeBuild builds with the link flags `make build` uses, read from make itself
// so they cannot drift from the Makefile: the binary names the checkout's commit and the
// build time.
func TestVersionMakeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make")
	}
	root := repoRoot(t)
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := t.TempDir()
	before := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	// The link flags exactly as `make build` passes them (make's dry run), applied to an
	// ordinary build: make build's -trimpath and CGO_ENABLED=0 would compile every package
	// again from scratch, a minute of CPU, and have nothing to do with the version.
	dry, err := exec.Command("make", "-n", "-s", "-C", root, "build", "BIN="+bin).Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindSubmatch(dry)
	if m == nil {
		t.Fatalf("make -n build: no -ldflags \"…\" in %q", dry)
	}
	gb := exec.Command("go", "build", "-ldflags", string(m[1]), "-o", filepath.Join(bin, "authgate"), "./cmd/authgate")
	gb.Dir = root
	var out bytes.Buffer
	gb.Stdout, gb.Stderr = &out, &out
	if err := gb.Run(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", m[1], err, out.String())
	}
	got, err := exec.Command(filepath.Join(bin, "authgate"), "version").Output()
	if err != nil {
		t.Fatalf("authgate version: %v", err)
	}
	v := regexp.MustCompile(`(?m)^commit: (\S+)\nbuilt:  (\S+)$`).FindStringSubmatch(string(got))
	if v == nil {
		t.Fatalf("authgate version: got %q, want commit: and built: lines", got)
	}
	if want := strings.TrimSpace(string(head)); v[1] != want {
		t.Errorf("commit: got %q, want %q (git rev-parse --short HEAD)", v[1], want)
	}
	built, err := time.Parse(time.RFC3339, v[2])
	if err != nil {
		t.Fatalf("built: %q is not an RFC 3339 time: %v", v[2], err)
	}
	if built.Before(before) {
		t.Errorf("built: got %s, before the build started (%s)", built, before)
	}
}

// TestVersionVCSFallback: a plain `go build` (the binary TestMain built) has no link-time
// values; version then shows the revision the toolchain stamped, as `go version -m` reads it.
func TestVersionVCSFallback(t *testing.T) {
	info, err := exec.Command("go", "version", "-m", binPath).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	code, out, _ := binary(t, os.Environ(), "", "version")
	if code != 0 {
		t.Fatalf("authgate version: exit %d", code)
	}
	rev := regexp.MustCompile(`(?m)^\s*build\s+vcs\.revision=([0-9a-f]+)$`).FindStringSubmatch(string(info))
	if rev == nil {
		if !strings.Contains(out, "commit: unknown\n") {
			t.Errorf("no VCS stamp: got %q, want commit: unknown", out)
		}
		return
	}
	if !strings.Contains(out, "commit: "+rev[1][:7]) {
		t.Errorf("got %q, want commit %s (vcs.revision)", out, rev[1][:7])
	}
	vcsTime := regexp.MustCompile(`(?m)^\s*build\s+vcs\.time=(\S+)$`).FindStringSubmatch(string(info))
	if vcsTime != nil && !strings.Contains(out, "built:  "+vcsTime[1]+" (commit time)") {
		t.Errorf("got %q, want the commit time %s", out, vcsTime[1])
	}
}
