package issuer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeNewFile writes data to path, mode 0600, only if path does not exist, and reports
// whether it did. The data goes to a new temporary file in the same directory (created with
// O_EXCL), is synced, and is then hard-linked to path: a link, unlike a rename, fails when
// path exists, so of two processes racing only one file is ever in place and both end up
// loading it. A reader never sees a partly written file.
func writeNewFile(path string, data []byte) (bool, error) {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrExist):
		return false, nil // another process won the race; its file is complete
	default:
		// The file system may not support hard links. Fall back to an exclusive rename
		// check: rename only if path is still absent (a small race remains).
		if _, serr := os.Lstat(path); serr == nil {
			return false, nil
		}
		if rerr := os.Rename(tmp, path); rerr != nil {
			return false, fmt.Errorf("issuer: create key file %s: %w", path, errors.Join(err, rerr))
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return false, fmt.Errorf("issuer: create key file %s: %w", path, err)
	}
	return true, nil
}

// replaceFile replaces path with data atomically: temporary file, fsync, rename, mode 0600.
func replaceFile(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("issuer: replace key file %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("issuer: replace key file %s: %w", path, err)
	}
	return nil
}

// writeTemp writes data to a new file (O_EXCL, mode 0600) next to path, syncs it and returns
// its name.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("issuer: write key file %s: %w", path, err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("issuer: write key file %s: %w", path, err)
	}
	// CreateTemp already uses 0600; Chmod guards against an unusual umask or platform.
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("issuer: write key file %s: %w", path, err)
	}
	return name, nil
}

// syncDir fsyncs a directory so that a rename or link in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
