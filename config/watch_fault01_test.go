package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Issue 10, found fault 1: `authgate serve --config gw.yaml > authgate.log` in one
// folder. Every log line was a directory event that re-armed the settle timer, so a
// changed config was never reloaded while traffic flowed.

const (
	// serveSettle is the settle `authgate serve` uses.
	serveSettle = 200 * time.Millisecond
	// churnEvery is how often a churning file is written: well under serveSettle, so a
	// settle that any event re-arms never runs out.
	churnEvery = 20 * time.Millisecond
	// churnBound is how long a reported change is waited for while something churns.
	// Generous: the watch promises 5×serveSettle after the first relevant event.
	churnBound = 3 * time.Second
)

// watchSettle is watch with a settle of its own.
func watchSettle(t *testing.T, path string, settle time.Duration) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	changes := make(chan string, 64)
	if err := Watch(ctx, path, settle, func() {
		b, _ := os.ReadFile(path)
		changes <- string(b)
	}); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return changes
}

// churn writes to path every churnEvery, a new content each time, until the test ends.
// It returns a channel closed after the first write.
func churn(t *testing.T, path string, appendLines bool) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(churnEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			line := fmt.Sprintf("churn: %d\n", i)
			if appendLines {
				f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err == nil {
					_, _ = f.WriteString(line)
					_ = f.Close()
				}
			} else {
				_ = os.WriteFile(path, []byte(line), 0o600)
			}
			if i == 0 {
				close(started)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return started
}

// changeWithin waits at most churnBound for a reported change for which ok holds,
// skipping others, and returns it.
func changeWithin(t *testing.T, changes <-chan string, ok func(string) bool) string {
	t.Helper()
	timeout := time.After(churnBound)
	for {
		select {
		case got := <-changes:
			if ok(got) {
				return got
			}
		case <-timeout:
			t.Fatalf("no matching reload within %s", churnBound)
			return ""
		}
	}
}

func equals(want string) func(string) bool {
	return func(got string) bool { return got == want }
}

func TestFault01_ReloadWhileNeighbourFileChurns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	changes := watchSettle(t, path, serveSettle)
	<-churn(t, filepath.Join(dir, "authgate.log"), true) // the access log, next to the config

	writeFile(t, path, "listen: \":2\"\n")
	changeWithin(t, changes, equals("listen: \":2\"\n"))

	// And the next edit too, while the log keeps growing; this time by an editor's rename.
	tmp := filepath.Join(dir, ".gw.yaml.swp")
	writeFile(t, tmp, "listen: \":3\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	changeWithin(t, changes, equals("listen: \":3\"\n"))
}

func TestFault01_SettleBoundedWhileConfigKeepsChanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	changes := watchSettle(t, path, serveSettle)
	// The config itself written every 20 ms: each write is a relevant event, yet the
	// settle must end and the file be checked while the writes go on.
	<-churn(t, path, false)
	changeWithin(t, changes, func(got string) bool { return got != "listen: \":1\"\n" })
}

func TestFault01_ConfigMapSwapWhileNeighbourChurns(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "gateway.yaml"), content)
	}
	version("..2026_01_01_00_00_00.1", "listen: \":1\"\n")
	if err := os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.Symlink(filepath.Join("..data", "gateway.yaml"), path); err != nil {
		t.Fatal(err)
	}
	changes := watchSettle(t, path, serveSettle)
	<-churn(t, filepath.Join(dir, "authgate.log"), true)

	// The kubelet's update: a new timestamped directory, a new ..data symlink renamed
	// over the old one, the old directory removed.
	version("..2026_01_01_00_01_00.2", "listen: \":2\"\n")
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..2026_01_01_00_01_00.2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	changeWithin(t, changes, equals("listen: \":2\"\n"))
}

// A config path that is a symlink to a file elsewhere: the target changing is a change,
// even with the target's neighbours churning, and re-pointing the link is followed.
func TestFault01_SymlinkedConfigTargetChanges(t *testing.T) {
	linkDir, realDir := t.TempDir(), t.TempDir()
	target := filepath.Join(realDir, "real.yaml")
	writeFile(t, target, "listen: \":1\"\n")
	path := filepath.Join(linkDir, "gw.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	changes := watchSettle(t, path, serveSettle)
	<-churn(t, filepath.Join(realDir, "authgate.log"), true)

	writeFile(t, target, "listen: \":2\"\n")
	changeWithin(t, changes, equals("listen: \":2\"\n"))

	// Re-point the link (ln -sfn): the new target is read, and its edits are seen.
	other := filepath.Join(t.TempDir(), "other.yaml")
	writeFile(t, other, "listen: \":3\"\n")
	tmp := filepath.Join(linkDir, ".gw.yaml.tmp")
	if err := os.Symlink(other, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	changeWithin(t, changes, equals("listen: \":3\"\n"))
	writeFile(t, other, "listen: \":4\"\n")
	changeWithin(t, changes, equals("listen: \":4\"\n"))
}
