package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	settle = 20 * time.Millisecond
	// bound is how long a change may take to be reported before the test fails.
	bound = 10 * time.Second
	// quiet is how long a change that must not be reported is waited for.
	quiet = 300 * time.Millisecond
)

// watch starts Watch on path and returns a channel receiving the file's content each time
// onChange runs.
func watch(t *testing.T, path string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	changes := make(chan string, 16)
	err := Watch(ctx, path, settle, func() {
		b, _ := os.ReadFile(path)
		changes <- string(b)
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return changes
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nextChange waits at most bound for onChange and returns what it read.
func nextChange(t *testing.T, changes <-chan string) string {
	t.Helper()
	select {
	case got := <-changes:
		return got
	case <-time.After(bound):
		t.Fatalf("onChange not called within %s", bound)
		return ""
	}
}

// noChange fails if onChange runs within quiet.
func noChange(t *testing.T, changes <-chan string, why string) {
	t.Helper()
	select {
	case got := <-changes:
		t.Fatalf("%s: onChange called (file %q), want no call", why, got)
	case <-time.After(quiet):
	}
}

func TestWatchReportsChangedContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	changes := watch(t, path)

	writeFile(t, path, "listen: \":2\"\n")
	if got, want := nextChange(t, changes), "listen: \":2\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	writeFile(t, path, "listen: \":3\"\n")
	if got, want := nextChange(t, changes), "listen: \":3\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWatchIgnoresIdenticalBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	changes := watch(t, path)

	writeFile(t, path, "listen: \":1\"\n")                   // same bytes: touched, not changed
	writeFile(t, filepath.Join(dir, "other.yaml"), "x: 1\n") // a neighbour changed
	noChange(t, changes, "identical rewrite")

	// The watch is still alive: a real change after the identical one is the first reported.
	writeFile(t, path, "listen: \":2\"\n")
	if got, want := nextChange(t, changes), "listen: \":2\"\n"; got != want {
		t.Errorf("first change reported: got %q, want %q", got, want)
	}
}

func TestWatchSeesAtomicRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	changes := watch(t, path)

	// What editors and `kubectl cp`-like tools do: write a temporary file, rename it over.
	tmp := filepath.Join(dir, ".gateway.yaml.swp")
	writeFile(t, tmp, "listen: \":2\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got, want := nextChange(t, changes), "listen: \":2\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// And again: the watch does not end with the replaced file.
	writeFile(t, tmp, "listen: \":3\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got, want := nextChange(t, changes), "listen: \":3\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWatchSeesConfigMapSwap reproduces how the kubelet updates a mounted ConfigMap:
// gateway.yaml -> ..data/gateway.yaml, ..data -> ..<timestamp>; an update writes a new
// timestamped directory and renames a new ..data symlink over the old one.
func TestWatchSeesConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "gateway.yaml"), content)
	}
	swap := func(name string) {
		t.Helper()
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_01_00_00_00.1", "listen: \":1\"\n")
	if err := os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.Symlink(filepath.Join("..data", "gateway.yaml"), path); err != nil {
		t.Fatal(err)
	}
	changes := watch(t, path)

	version("..2026_01_01_00_01_00.2", "listen: \":2\"\n")
	swap("..2026_01_01_00_01_00.2")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	if got, want := nextChange(t, changes), "listen: \":2\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan string, 16)
	if err := Watch(ctx, path, settle, func() { changes <- "called" }); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "listen: \":2\"\n")
	nextChange(t, changes)
	cancel()
	writeFile(t, path, "listen: \":3\"\n")
	noChange(t, changes, "after cancel")
}

func TestWatchMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "gateway.yaml")
	if err := Watch(context.Background(), path, settle, func() {}); err == nil {
		t.Error("got nil error, want one for a directory that does not exist")
	}
}
