// Package fsutil writes files so that nothing a user wrote or trained is ever half-written: a file is
// written to a temporary file in the same directory, synced, and renamed over its name, so readers see
// the old content or the new one, never a part; the directory is synced so the rename survives a crash.
package fsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes body to file atomically (see the package doc), creating file's directory.
func WriteFileAtomic(file string, body []byte) error {
	return WriteFileWith(file, func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	})
}

// WriteFileWith runs write on a buffered temporary file next to path and renames it to path when write
// and the sync succeed, creating path's directory first; on failure path is untouched and the temporary
// file removed. The file gets mode 0644 (os.CreateTemp's 0600 would hide results from other users).
func WriteFileWith(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	buf := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(buf); err != nil {
		return err
	}
	if err = buf.Flush(); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or a new file in dir durable (a no-op where directories cannot be synced).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
