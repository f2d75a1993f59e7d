package main

import (
	"bytes"
	"io"
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
			code := run(append(c.args, "-runs", dir), io.Discard, &stderr)
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

// -sweep trains every run of a sweep file; a failed run makes the exit code 1 after the others ran, and
// a mistake in the sweep file is one line naming the file, line and key.
func TestSweepFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	os.WriteFile(file, []byte(`name: s
experiment:
  backend: go
  model: {vocab: 16, d_model: 16, layers: [attention], mlp_hidden: -1, attention: {heads: 2, max_context: 64}}
  data: {task: mqar, mqar: {vocab: 16, seq_len: 16, num_pairs: 2, power_a: 0.01}}
  train: {steps: 3, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1}
grid: {model.d_model: [15, 16]}
`), 0o644)
	var stderr bytes.Buffer
	code := run([]string{"-sweep", file, "-runs", dir, "-name", "renamed", "-set", "train.steps=2"}, io.Discard, &stderr)
	out := stderr.String()
	if code != 1 || !strings.Contains(out, "1 of 2 runs of sweep renamed failed") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "renamed", "d_model=16,seed=1", "summary.json"))
	if err != nil || !strings.Contains(string(summary), `"steps": 2`) {
		t.Errorf("the valid run's summary (-set applied to every run): %s %v", summary, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "renamed", "results.md")); err != nil {
		t.Errorf("no results table: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: s\nbase: quickstart\ngrdi: {}\n"), 0o644)
	stderr.Reset()
	code = run([]string{"-sweep", bad, "-runs", dir}, io.Discard, &stderr)
	if out := stderr.String(); code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, bad+`: line 3: unknown key "grdi"`) {
		t.Errorf("exit %d, output %q", code, out)
	}
}

// -h prints the one-line description, usage and the flags with defaults under the short name, and
// exits 0; an unknown flag exits 2.
func TestHelpAndBadFlag(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &stderr); code != 0 {
		t.Errorf("-h exit %d, want 0", code)
	}
	out := stderr.String()
	for _, want := range []string{"train: train a memory-layer model", "Usage: train [flags]", "-parallel int", "(default 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h output lacks %q:\n%s", want, out)
		}
	}
	stderr.Reset()
	if code := run([]string{"-stepz", "3"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-stepz") {
		t.Errorf("unknown flag: exit %d, output %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"extra"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), `unexpected argument "extra"`) {
		t.Errorf("stray argument: exit %d, output %q", code, stderr.String())
	}
}
