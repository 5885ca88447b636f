package config

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange whenever the content of the file at path changes, until ctx is
// done. It watches the file's directory, not the file, so editors that replace the file
// and Kubernetes ConfigMap updates (an atomic swap of a "..data" symlink) are both seen.
// Bursts of events are settled for settle (e.g. 100ms) and a change is reported only when
// the bytes differ from the last ones seen. It returns once the watch is set up.
func Watch(ctx context.Context, path string, settle time.Duration, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch: %w", err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		_ = w.Close()
		return fmt.Errorf("config: watch %s: %w", filepath.Dir(path), err)
	}
	last, _ := os.ReadFile(path)
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer = time.After(settle)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			case <-timer:
				timer = nil
				if ctx.Err() != nil {
					return // select chose the timer although ctx was done too
				}
				cur, err := os.ReadFile(path)
				if err != nil || bytes.Equal(cur, last) || len(bytes.TrimSpace(cur)) == 0 {
					// Mid-swap, nothing of ours changed, or an editor truncated the file
					// before writing it: an empty file would reload as "no routes".
					continue
				}
				last = cur
				onChange()
			}
		}
	}()
	return nil
}
