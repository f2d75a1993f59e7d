package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/export"
	"github.com/engramlx/engram/train"
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

// A bare eval of a run trained on MQAR (no eval: section of its own) scores MQAR at its training length;
// a byte-level task on its 32-token vocabulary is refused in one line instead of scored as zeros;
// repeated -file flags score the rows of every file.
func TestBareEvalUsesTheRunsTask(t *testing.T) {
	dir := t.TempDir()
	exp, err := configs.Parse("tiny", []byte(`
name: tiny
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: [attention], mlp_hidden: -1, attention: {heads: 2, max_context: 64}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 2, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), exp, train.Options{Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "tiny")
	var stderr bytes.Buffer
	if code := evalRun(t, []string{"-run", run, "-samples", "2"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "mqar length 16 pairs 2") {
		t.Errorf("bare eval: exit %d, output:\n%s", code, stderr.String())
	}
	stderr.Reset()
	code := evalRun(t, []string{"-run", run, "-tasks", "passkey"}, &stderr)
	if out := strings.TrimSpace(stderr.String()); code != 1 || !strings.Contains(out, "task passkey is byte-level") || !strings.Contains(out, "vocabulary is 32") {
		t.Errorf("passkey on a 32-token model: exit %d, output %q", code, out)
	}
	var files []string
	for _, shape := range [][2]int{{16, 2}, {24, 3}} {
		src, err := data.NewTaskSource(data.MQAR{Vocab: 32, SeqLen: shape[0], NumPairs: shape[1], PowerA: 0.01}, 2, 1, data.SplitTest)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("mqar%d.arrow", shape[0]))
		if err := data.WriteTask(file, data.OutArrowFile, src, 2); err != nil {
			t.Fatal(err)
		}
		files = append(files, "-file", file)
	}
	stderr.Reset()
	code = evalRun(t, append([]string{"-run", run, "-tasks", "mqar"}, files...), &stderr)
	if out := stderr.String(); code != 0 || !strings.Contains(out, "mqar length 16 pairs 2") || !strings.Contains(out, "mqar length 24 pairs 3") {
		t.Errorf("two -file flags: exit %d, output:\n%s", code, out)
	}
}

// An export directory evaluates like the run it came from: the export records the run's data section,
// so a bare eval picks the same task, and scores the same numbers; the curve names it after the run.
func TestEvalOfAnExportEqualsTheRun(t *testing.T) {
	dir := t.TempDir()
	exp, err := configs.Parse("tiny", []byte(`
name: tiny
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: [gated_deltanet], mlp_hidden: -1, deltanet: {heads: 2, head_dim_k: 8, chunk_size: 4}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 3, batch_size: 2, warmup_steps: 1, learning_rate: 0.01, eval_batches: 1, log_every: 1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), exp, train.Options{Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "tiny")
	r, err := train.Open(runDir, train.Options{Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	exportDir := filepath.Join(runDir, "export")
	if _, err := export.RunWeights(r, exportDir, "float32", export.FLAImport{}); err != nil {
		t.Fatal(err)
	}
	scores := func(target string) string {
		var stderr bytes.Buffer
		if code := evalRun(t, []string{"-run", target, "-samples", "8", "-out", t.TempDir()}, &stderr); code != 0 {
			t.Fatalf("eval -run %s: exit %d\n%s", target, code, stderr.String())
		}
		for _, line := range strings.Split(stderr.String(), "\n") {
			if i := strings.Index(line, "tiny mqar length 16 pairs 2: "); i >= 0 {
				return line[i:strings.LastIndex(line, ",")] // without the wall time
			}
		}
		t.Fatalf("eval -run %s printed no mqar line for tiny:\n%s", target, stderr.String())
		return ""
	}
	fromRun, fromExport := scores(runDir), scores(exportDir)
	t.Logf("run:    %s\nexport: %s", fromRun, fromExport)
	if fromRun != fromExport {
		t.Errorf("the export scores %q, its run %q", fromExport, fromRun)
	}
}

func evalRun(t *testing.T, args []string, stderr *bytes.Buffer) int {
	t.Helper()
	return run(args, io.Discard, stderr)
}
