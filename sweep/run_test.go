package sweep

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/train"
)

// childEnv makes the test binary act as cmd/train for the parallel test: "-config FILE" trains FILE.
const childEnv = "ENGRAM_SWEEP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func child(args []string) int {
	if len(args) != 2 || args[0] != "-config" {
		fmt.Fprintln(os.Stderr, "train: want -config FILE, got", args)
		return 2
	}
	exp, err := configs.Load(args[1], nil)
	if err == nil {
		_, err = train.Run(context.Background(), exp, train.Options{Log: os.Stderr})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 1
	}
	return 0
}

// tinySweep is a sweep over d_model of a model small enough to train 6 steps in about a second.
func tinySweep(t *testing.T, dir, grid string) *Sweep {
	t.Helper()
	s, err := Parse("tiny.yaml", []byte(`
name: tiny
runs_dir: `+dir+`
experiment:
  backend: go
  model: {vocab: 16, d_model: 16, layers: [attention], mlp_hidden: -1, attention: {heads: 2, max_context: 64}}
  data: {task: mqar, mqar: {vocab: 16, seq_len: 16, num_pairs: 2, power_a: 0.01}}
  train: {steps: 6, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1, checkpoint_every: 2}
grid: {`+grid+`}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quiet() io.Writer { return io.Discard }

// A sweep interrupted in its second run and started again skips the finished first run (its files are
// untouched), resumes the second from its checkpoint and runs the third.
func TestInterruptedSweepResumes(t *testing.T) {
	dir := t.TempDir()
	s := tinySweep(t, dir, "model.d_model: [16, 24, 32]")
	ctx, cancel := context.WithCancel(context.Background())
	var ended []string
	rows, err := Execute(ctx, s, Options{Log: quiet(),
		AfterStep: func(id string, step int) {
			if id == s.Runs[1].ID && step == 2 {
				cancel() // as a Ctrl-C during the second run
			}
		},
		AfterRun: func(r Row) { ended = append(ended, r.Run.ID) }})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first session: err %v, want ErrInterrupted", err)
	}
	if got := statuses(rows); got != "ok pending pending" || len(ended) != 1 {
		t.Fatalf("first session: statuses %q, ended %v", got, ended)
	}
	if _, err := os.Stat(s.Runs[2].Dir()); !os.IsNotExist(err) {
		t.Errorf("the third run was started after the interrupt (stat: %v)", err)
	}
	first := filepath.Join(s.Runs[0].Dir(), "summary.json")
	before, _ := os.ReadFile(first)
	stat, _ := os.Stat(first)
	time.Sleep(20 * time.Millisecond) // a rewrite would show in the modification time

	ended = nil
	rows, err = Execute(context.Background(), tinySweep(t, dir, "model.d_model: [16, 24, 32]"), Options{Log: quiet(),
		AfterRun: func(r Row) { ended = append(ended, r.Run.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rows); got != "ok ok ok" || !rows[0].Skipped || rows[1].Skipped || rows[2].Skipped {
		t.Fatalf("second session: statuses %q, skipped %v %v %v", got, rows[0].Skipped, rows[1].Skipped, rows[2].Skipped)
	}
	if len(ended) != 2 || ended[0] != s.Runs[1].ID || ended[1] != s.Runs[2].ID {
		t.Errorf("second session trained %v, want the second and third runs only", ended)
	}
	after, _ := os.ReadFile(first)
	stat2, _ := os.Stat(first)
	if !bytes.Equal(before, after) || !stat.ModTime().Equal(stat2.ModTime()) {
		t.Errorf("the finished run's summary.json was rewritten")
	}
	log, _ := os.ReadFile(filepath.Join(s.Runs[1].Dir(), logFile))
	if !strings.Contains(string(log), "from step 2") {
		t.Errorf("second run did not resume from its step-2 checkpoint; its log:\n%s", log)
	}
	for _, r := range rows {
		if r.Summary.Steps != 6 {
			t.Errorf("%s: %d steps, want 6", r.Run.ID, r.Summary.Steps)
		}
	}
	// A third start has nothing left to train, and clears an error.txt an attempt since left behind.
	stale := filepath.Join(s.Runs[0].Dir(), errorFile)
	os.WriteFile(stale, []byte("old failure\n"), 0o644)
	ended = nil
	rows, err = Execute(context.Background(), tinySweep(t, dir, "model.d_model: [16, 24, 32]"), Options{Log: quiet(),
		AfterRun: func(r Row) { ended = append(ended, r.Run.ID) }})
	if err != nil || len(ended) != 0 || !rows[1].Skipped || !rows[2].Skipped {
		t.Errorf("third session: err %v, trained %v", err, ended)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale error.txt of a finished run kept (stat: %v)", err)
	}
}

// A grid cell with an invalid value (d_model 15 with 2 heads) fails with its error recorded in
// error.txt, results.csv and results.md, and the runs after it still train.
func TestFailingRunIsReportedAndOthersGoOn(t *testing.T) {
	dir := t.TempDir()
	s := tinySweep(t, dir, "model.d_model: [15, 16]")
	rows, err := Execute(context.Background(), s, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rows); got != "failed ok" {
		t.Fatalf("statuses %q", got)
	}
	if !strings.Contains(rows[0].Error, "d_model = 15") || !strings.Contains(rows[0].Error, "heads = 2") {
		t.Errorf("error %q does not name the field and value", rows[0].Error)
	}
	errText, _ := os.ReadFile(filepath.Join(s.Runs[0].Dir(), errorFile))
	if strings.TrimSpace(string(errText)) != rows[0].Error {
		t.Errorf("error.txt %q, row error %q", errText, rows[0].Error)
	}
	table := readCSV(t, filepath.Join(s.Dir, "results.csv"))
	if len(table) != 3 || table[1][0] != "d_model=15,seed=1" || table[1][3] != "failed" || table[1][len(table[1])-1] != rows[0].Error {
		t.Errorf("results.csv rows %q", table)
	}
	if table[2][3] != "ok" || table[2][4] != strconv.FormatFloat(rows[1].Summary.EvalAccuracy, 'g', 6, 64) || table[1][4] != "" {
		t.Errorf("results.csv ok row %q", table[2])
	}
	md, _ := os.ReadFile(filepath.Join(s.Dir, "results.md"))
	if !strings.Contains(string(md), "| d_model=15,seed=1 | 1 | failed |") || !strings.Contains(string(md), "d_model = 15") {
		t.Errorf("results.md does not report the failure:\n%s", md)
	}
	if !strings.Contains(string(md), "| 15 | 0/1 | 1 |") || !strings.Contains(string(md), "| 16 | 1/1 | 0 |") {
		t.Errorf("results.md groups:\n%s", md)
	}
	// The plot has the finished configuration: a PNG of the promised size.
	f, err := os.Open(filepath.Join(s.Dir, "eval_accuracy_vs_d_model.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Errorf("plot: %v %v", err, img)
	}
}

// With Parallel 2 the runs train in child processes (this test binary acting as cmd/train), their
// output lands in train.log and their summaries are read back; a child that fails has its last line as
// the error.
func TestParallelRunsInChildProcesses(t *testing.T) {
	dir := t.TempDir()
	s := tinySweep(t, dir, "model.d_model: [16, 24, 32]")
	t.Setenv(childEnv, "1")
	exe, _ := os.Executable()
	rows, err := Execute(context.Background(), s, Options{Log: quiet(), Parallel: 2,
		Command: func(file string) []string {
			if strings.Contains(file, "d_model=32") {
				return []string{exe, "-config", file, "extra"} // this child refuses its arguments
			}
			return []string{exe, "-config", file}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rows); got != "ok ok failed" {
		t.Fatalf("statuses %q (errors %q)", got, rows[2].Error)
	}
	if !strings.HasPrefix(rows[2].Error, "want -config FILE") || !strings.Contains(rows[2].Error, "exit status 2") {
		t.Errorf("child failure recorded as %q", rows[2].Error)
	}
	for _, r := range rows[:2] {
		log, _ := os.ReadFile(filepath.Join(r.Run.Dir(), logFile))
		if !strings.Contains(string(log), "step 6/6") || r.Summary.Steps != 6 || r.Summary.Name != r.Run.ID {
			t.Errorf("%s: summary %+v, log:\n%s", r.Run.ID, r.Summary, log)
		}
	}
}

func statuses(rows []Row) string {
	var s []string
	for _, r := range rows {
		s = append(s, r.Status)
	}
	return strings.Join(s, " ")
}

func readCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return table
}
