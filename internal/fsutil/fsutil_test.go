package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A write lands whole (in a directory created for it, mode 0644); a failed write leaves the old file
// and no temporary file behind.
func TestWriteFileAtomic(t *testing.T) {
	file := filepath.Join(t.TempDir(), "new", "dir", "f.txt")
	if err := WriteFileAtomic(file, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if body, _ := os.ReadFile(file); string(body) != "one" {
		t.Fatalf("content %q", body)
	}
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", info.Mode().Perm())
	}
	boom := errors.New("disk full")
	err := WriteFileWith(file, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want it to wrap %v", err, boom)
	}
	if body, _ := os.ReadFile(file); string(body) != "one" {
		t.Errorf("after a failed write the file holds %q, want the old content", body)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 {
		t.Errorf("%d entries left in the directory, want only the file", len(entries))
	}
}
