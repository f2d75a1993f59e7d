package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input exits non-zero with one line naming the key, file or field, and no stack trace.
func TestBadInputOneLineErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("name: x\nmodel:\n  d_modle: 64\n"), 0o644)
	heads := filepath.Join(dir, "heads.yaml")
	os.WriteFile(heads, []byte("name: x\nmodel:\n  d_model: 60\n  attention: {heads: 8}\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown key", []string{"-config", unknown}, []string{unknown, "line 3", `unknown key "d_modle"`}},
		{"wrong-typed override", []string{"-set", "model.d_model=abc"}, []string{"-set model.d_model=abc", `"abc"`, "int"}},
		{"unknown override key", []string{"-set", "train.stepz=3"}, []string{"-set train.stepz=3", `unknown key "stepz"`}},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		{"invalid combination", []string{"-config", heads}, []string{heads, "heads = 8", "d_model = 60"}},
		{"bad flag value", []string{"-set", "novalue"}, []string{"-set novalue", "key=value"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append(c.args, "-runs", dir), &stderr)
			out := stderr.String()
			if code == 0 {
				t.Fatalf("exit code 0, want non-zero; output %q", out)
			}
			if lines := strings.Count(strings.TrimRight(out, "\n"), "\n") + 1; lines != 1 {
				t.Errorf("want one line, got %d: %q", lines, out)
			}
			if strings.Contains(out, "goroutine") || strings.Contains(out, ".go:") {
				t.Errorf("output looks like a stack trace: %q", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not name %q", out, w)
				}
			}
		})
	}
}
