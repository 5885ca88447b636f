package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settleLimitFactor bounds the settle: a change is checked at most this many settle
// periods after the first event that could have changed the file, however many follow.
const settleLimitFactor = 5

// Watch calls onChange whenever the content of the file at path changes, until ctx is
// done. It watches the file's directory, not the file, so editors that replace the file
// (write a temporary file, rename it onto the name) and Kubernetes ConfigMap updates (an
// atomic swap of a "..data" symlink) are both seen. When path is a symlink, the directory
// of the file it points to is watched too, so a change of the target is seen.
//
// Only events that can change the file count: its own name, its symlink target's name,
// and the ConfigMap entries (names starting with ".."). Other files in the directory, such
// as a log written next to the config, are ignored. Bursts of events are settled for
// settle (e.g. 200ms), but never longer than 5×settle after the first event of a burst, so
// a file that keeps being written is still checked. A change is reported only when the
// bytes differ from the last ones seen. Watch returns once the watch is set up.
func Watch(ctx context.Context, path string, settle time.Duration, onChange func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch: %w", err)
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("config: watch %s: %w", dir, err)
	}
	fw := &fileWatch{w: w, path: abs, dir: dir}
	fw.followTarget()
	last, _ := os.ReadFile(abs)
	go fw.run(ctx, settle, last, onChange)
	return nil
}

// fileWatch is the state of one Watch: the watcher, the config path and the symlink
// target whose directory is watched as well.
type fileWatch struct {
	w    *fsnotify.Watcher
	path string // absolute config path
	dir  string // its directory, always watched
	// target is the file path resolves to when it is a symlink ("" otherwise), and
	// targetDir the extra directory watched for it ("" when none is).
	target, targetDir string
}

// followTarget resolves path's symlinks and, when the target lives in another directory,
// watches that directory instead of the previous target's. Errors leave the previous
// state: the file may be mid-swap, and the next event tries again.
func (fw *fileWatch) followTarget() {
	resolved, err := filepath.EvalSymlinks(fw.path)
	if err != nil {
		return
	}
	if resolved == fw.path {
		fw.target = ""
	} else {
		fw.target = resolved
	}
	want := ""
	if fw.target != "" && !sameDir(filepath.Dir(fw.target), fw.dir) && !configMapDir(fw.target, fw.dir) {
		want = filepath.Dir(fw.target)
	}
	if want == fw.targetDir {
		return
	}
	if fw.targetDir != "" {
		_ = fw.w.Remove(fw.targetDir) // may already be gone with its directory
	}
	fw.targetDir = ""
	if want != "" && fw.w.Add(want) == nil {
		fw.targetDir = want
	}
}

// relevant reports whether an event on name can change the config file's content.
func (fw *fileWatch) relevant(name string) bool {
	base := filepath.Base(name)
	switch {
	case base == filepath.Base(fw.path):
		return true
	case fw.target != "" && base == filepath.Base(fw.target):
		return true
	default:
		// Kubernetes ConfigMap layout: "..data" (and "..data_tmp" renamed onto it) and the
		// "..<timestamp>" directories it points to.
		return strings.HasPrefix(base, "..")
	}
}

func (fw *fileWatch) run(ctx context.Context, settle time.Duration, last []byte, onChange func()) {
	defer fw.w.Close()
	// Since Go 1.23 Stop and Reset leave no stale value in timer.C to drain.
	timer := time.NewTimer(settle)
	timer.Stop()
	armed := false
	// retry is how soon a check that found the file missing or empty looks again.
	const maxRetries = 3
	retry, retries := max(settle/8, time.Millisecond), 0
	var deadline time.Time // latest time the armed check may run
	arm := func() {
		now := time.Now()
		if !armed {
			armed, retries = true, 0
			deadline = now.Add(settleLimitFactor * settle)
		}
		wait := settle
		if left := deadline.Sub(now); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			if fw.relevant(ev.Name) {
				arm()
			}
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm() // events were lost: one of them may have been ours
			}
		case <-timer.C:
			armed = false
			if ctx.Err() != nil {
				return // select chose the timer although ctx was done too
			}
			fw.followTarget()
			cur, err := os.ReadFile(fw.path)
			if err != nil || len(bytes.TrimSpace(cur)) == 0 {
				// Mid-swap, or truncated by a writer that has not written yet (an empty
				// file would reload as "no routes"): look again shortly, a few times, so
				// a file that keeps being written is not missed at every deadline.
				if retries < maxRetries {
					retries++
					armed, deadline = true, time.Now().Add(retry)
					timer.Reset(retry)
				}
				continue
			}
			retries = 0
			if bytes.Equal(cur, last) {
				continue // nothing of ours changed
			}
			last = cur
			onChange()
		}
	}
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// configMapDir reports whether target lies in a "..<timestamp>" directory directly under
// dir, as a ConfigMap's files do; the "..data" swap in dir already reports its changes.
func configMapDir(target, dir string) bool {
	td := filepath.Dir(target)
	return strings.HasPrefix(filepath.Base(td), "..") && sameDir(filepath.Dir(td), dir)
}
