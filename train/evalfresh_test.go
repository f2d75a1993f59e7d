package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The evaluation printed and logged during training scores the weights of that step: it equals a fresh
// process's evaluation of the checkpoint saved at the same step, and it changes as the weights do.
func TestInTrainingEvalEqualsCheckpointEval(t *testing.T) {
	dir := t.TempDir()
	exp := tinyExperiment(t, dir)
	exp.Train.Steps, exp.Train.EvalEvery, exp.Train.CheckpointEvery, exp.Train.KeepCheckpoints = 8, 2, 2, 4
	exp.Train.EvalBatches = 2
	exp.Train.LearningRate = 0.02
	r, err := NewRunner(exp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadMetrics(filepath.Join(r.Dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	logged := map[int][2]float64{}
	for _, row := range rows {
		if loss, ok := row["eval_loss"]; ok {
			logged[int(row["step"])] = [2]float64{loss, row["eval_accuracy"]}
		}
	}
	if len(logged) != 3 {
		t.Fatalf("eval logged at %d steps (%v), want 3 (steps 2, 4, 6)", len(logged), logged)
	}
	if logged[2][0] == logged[4][0] || logged[4][0] == logged[6][0] {
		t.Errorf("in-training eval loss did not change between steps: %v", logged)
	}
	ckpts, _ := filepath.Glob(filepath.Join(r.Dir, "checkpoints", "ckpt-*"))
	for _, ckpt := range ckpts {
		var step int
		if i := strings.LastIndex(ckpt, "step-"); i >= 0 {
			for _, c := range ckpt[i+5:] {
				step = step*10 + int(c-'0')
			}
		}
		want, ok := logged[step]
		if !ok {
			continue
		}
		// A run directory holding only this checkpoint, opened as cmd/eval would.
		fresh := filepath.Join(t.TempDir(), "fresh")
		if err := os.MkdirAll(filepath.Join(fresh, "checkpoints"), 0o755); err != nil {
			t.Fatal(err)
		}
		copyDir(t, ckpt, filepath.Join(fresh, "checkpoints", filepath.Base(ckpt)))
		copyDir(t, filepath.Join(r.Dir, "config.yaml"), filepath.Join(fresh, "config.yaml"))
		opened, err := Open(fresh, quiet())
		if err != nil {
			t.Fatal(err)
		}
		opened.graphs()
		_, evalSrc, err := Sources(opened.Exp)
		if err != nil {
			t.Fatal(err)
		}
		loss, acc, err := opened.evaluate(&indexedDataset{src: evalSrc, vocab: opened.Model.Config.Vocab, slots: evalSrc.LabelSlots(), limit: int64(exp.Train.EvalBatches)})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-want[0]) > 1e-6*math.Abs(want[0]) || math.Abs(acc-want[1]) > 1e-9 {
			t.Errorf("step %d: in-training eval loss %.7f acc %.4f, fresh eval of its checkpoint loss %.7f acc %.4f", step, want[0], want[1], loss, acc)
		}
		delete(logged, step)
	}
	if len(logged) != 0 {
		t.Errorf("no checkpoint for the evals at %v", logged)
	}
}

// copyDir copies a file, or a directory of files, from -> to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	info, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		body, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		copyDir(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
	}
}
