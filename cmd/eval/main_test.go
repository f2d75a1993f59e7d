package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -h describes the command and exits 0; a missing -run exits 2; a bad length is one line naming it,
// exit 1; a run directory that is not one is one line naming it, exit 1.
func TestFlagsAndBadInput(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "eval: evaluate trained runs") ||
		!strings.Contains(stderr.String(), "-lengths string") {
		t.Errorf("-h: exit %d, output:\n%s", code, stderr.String())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("name: x\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-tasks", "copy"}, 2, "-run is required"},
		{[]string{"-run", dir, "-lengths", "4Q"}, 1, `length "4Q"`},
		{[]string{"-run", dir, "-set", "model.d_model=3"}, 1, "cmd/eval sets only eval.<key>"},
		{[]string{"-run", filepath.Join(dir, "nope")}, 1, "nope"},
	} {
		stderr.Reset()
		code := run(c.args, io.Discard, &stderr)
		out := stderr.String()
		if code != c.code || !strings.Contains(out, c.want) || strings.Count(strings.TrimRight(out, "\n"), "\n") != 0 {
			t.Errorf("%v: exit %d, output %q; want exit %d and one line naming %q", c.args, code, out, c.code, c.want)
		}
	}
}
