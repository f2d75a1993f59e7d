package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// tinyExperiment is a model small enough to train a few steps in well under a second.
func tinyExperiment(t *testing.T, dir string) configs.Experiment {
	t.Helper()
	exp, err := configs.Parse("tiny", []byte(`
name: tiny
seed: 3
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: [attention], mlp_hidden: 32, attention: {heads: 2, max_context: 64}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 6, batch_size: 4, warmup_steps: 2, eval_batches: 1, log_every: 1, checkpoint_every: 2, keep_checkpoints: 2}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func quiet() Options { return Options{Log: discard{}} }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// weights returns every trainable variable's values by path.
func weights(t *testing.T, r *Runner) map[string][]float64 {
	out := map[string][]float64{}
	for v := range r.Store.IterVariables() {
		if v.Trainable {
			out[v.Path()] = lt.Floats(v.MustValue())
		}
	}
	if len(out) == 0 {
		t.Fatal("no trainable variables")
	}
	return out
}

// A run interrupted at step 3 and resumed ends with the same weights as an uninterrupted run, and the
// metrics log holds each step once.
func TestResumeAfterInterruptEqualsUninterrupted(t *testing.T) {
	straightDir, resumedDir := t.TempDir(), t.TempDir()
	straight, err := NewRunner(tinyExperiment(t, straightDir), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := straight.Train(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	opts := quiet()
	opts.AfterStep = func(step int) {
		if step == 3 {
			cancel()
		}
	}
	first, err := NewRunner(tinyExperiment(t, resumedDir), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Train(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v, want ErrInterrupted", err)
	}
	if info, err := ReadInfo(filepath.Join(resumedDir, "tiny", "checkpoints")); err != nil || info.Step != 3 || info.DataPosition != 3 {
		t.Fatalf("sidecar after interrupt: %+v, %v; want step 3, data position 3", info, err)
	}
	second, err := NewRunner(tinyExperiment(t, resumedDir), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if second.GlobalStep() != 3 {
		t.Fatalf("resumed at step %d, want 3", second.GlobalStep())
	}
	if _, err := second.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, got := weights(t, straight), weights(t, second)
	for path, w := range want {
		if err := lt.RelRMS(got[path], w); !(err <= 1e-6) {
			t.Errorf("%s: resumed weights differ from the uninterrupted run by %.3g (relative RMS)", path, err)
		}
	}
	lines, err := ReadMetrics(filepath.Join(resumedDir, "tiny", "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if int(l["step"]) != i+1 {
			t.Fatalf("metrics line %d has step %v: steps must be 1..6 once each", i, l["step"])
		}
	}
	for _, f := range []string{"summary.json", "loss.png", "config.yaml"} {
		if _, err := os.Stat(filepath.Join(resumedDir, "tiny", f)); err != nil {
			t.Errorf("run output %s missing: %v", f, err)
		}
	}
}

// Resuming with a different architecture is refused, naming the field.
func TestResumeRefusesChangedArchitecture(t *testing.T) {
	dir := t.TempDir()
	exp := tinyExperiment(t, dir)
	exp.Train.Steps, exp.Train.WarmupSteps = 1, 0
	if _, err := Run(context.Background(), exp, quiet()); err != nil {
		t.Fatal(err)
	}
	exp.Model.DModel = 32
	_, err := NewRunner(exp, quiet())
	if err == nil || !strings.Contains(err.Error(), "model.d_model: 16 -> 32") {
		t.Fatalf("got %v, want an error naming model.d_model: 16 -> 32", err)
	}
}

// Global-norm clipping: gradients (3, 4) and (12) have norm 13; clipped to 6.5 they halve.
func TestClipByGlobalNorm(t *testing.T) {
	out := lt.RunOp(func(in []*Node) []*Node {
		clipped, norm := ClipByGlobalNorm([]*Node{in[0], in[1]}, 6.5)
		same, _ := ClipByGlobalNorm([]*Node{in[0], in[1]}, 100)
		return []*Node{clipped[0], clipped[1], norm, same[0]}
	}, []*tensors.Tensor{tensors.FromValue([]float64{3, 4}), tensors.FromValue([]float64{12})})
	lt.AssertClose(t, "clipped a", out[0], tensors.FromValue([]float64{1.5, 2}), 1e-12)
	lt.AssertClose(t, "clipped b", out[1], tensors.FromValue([]float64{6}), 1e-12)
	lt.AssertClose(t, "norm", out[2], tensors.FromScalar(13.0), 1e-12)
	lt.AssertClose(t, "under the limit: unchanged", out[3], tensors.FromValue([]float64{3, 4}), 0)
}

// The schedule: linear warm-up to the peak at step 10, cosine to 10% at step 110.
func TestScheduleWarmupCosine(t *testing.T) {
	o := &AdamW{LearningRate: 1, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}
	steps := []float64{1, 5, 10, 60, 110, 200}
	out := lt.RunOp(func(in []*Node) []*Node { return []*Node{o.Schedule(in[0])} }, []*tensors.Tensor{tensors.FromValue(steps)})
	want := []float64{0.1, 0.5, 1, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*0.5)), 0.1, 0.1}
	lt.AssertClose(t, "learning rate", out[0], tensors.FromValue(want), 1e-12)
}

// A start that fails before its first checkpoint does not bind the run directory: the corrected rerun
// (other data here) starts; once a checkpoint exists, changing the data or seed is refused in one line
// naming the key and the way out, and changing a training setting is allowed, printed, recorded in
// resumes.jsonl, with config.yaml keeping the original.
func TestSavedConfigAcrossReruns(t *testing.T) {
	dir := t.TempDir()
	exp := tinyExperiment(t, dir)
	exp.Train.Steps = 2
	// A missing data file: the run directory and its config.yaml are written, then the data fails
	// before any checkpoint.
	failed := exp
	failed.Data.Task, failed.Data.FilesSeqLen = "files", 16
	failed.Data.Train.Path = filepath.Join(dir, "missing.parquet")
	failed.Data.Eval.Path = failed.Data.Train.Path
	if _, err := Run(context.Background(), failed, quiet()); err == nil || !strings.Contains(err.Error(), "missing.parquet") {
		t.Fatalf("a run on a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tiny", "config.yaml")); err != nil {
		t.Fatalf("the failed start wrote no config.yaml, so this test proves nothing: %v", err)
	}
	if _, err := Run(context.Background(), exp, quiet()); err != nil {
		t.Fatalf("the corrected rerun after a failed start: %v", err)
	}
	changedSeed := exp
	changedSeed.Seed = 9
	_, err := NewRunner(changedSeed, quiet())
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "seed: 3 -> 9") || !strings.Contains(err.Error(), "use -name") {
		t.Fatalf("changed seed: got %v", err)
	}
	longer := exp
	longer.Train.Steps, longer.Train.LearningRate = 4, 0.002
	var log strings.Builder
	r, err := NewRunner(longer, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.GlobalStep() != 4 || !strings.Contains(log.String(), "train.steps: 2 -> 4") {
		t.Errorf("step %d; log %q", r.GlobalStep(), log.String())
	}
	history, _ := os.ReadFile(filepath.Join(dir, "tiny", "resumes.jsonl"))
	saved, _ := os.ReadFile(filepath.Join(dir, "tiny", "config.yaml"))
	if !strings.Contains(string(history), "train.learning_rate: 0.001 -> 0.002") || !strings.Contains(string(saved), "steps: 2") {
		t.Errorf("resumes.jsonl %q; config.yaml keeps steps 2: %v", history, strings.Contains(string(saved), "steps: 2"))
	}
}

// A warm-up longer than the run is clamped with a notice instead of refusing short runs.
func TestWarmupClampedWithNotice(t *testing.T) {
	exp, err := configs.Load("quickstart", []string{"train.steps=5", "runs_dir=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Train.WarmupSteps != 5 || len(exp.Notices) != 1 || !strings.Contains(exp.Notices[0], "warm-up clamped to 5") {
		t.Errorf("warmup %d, notices %v", exp.Train.WarmupSteps, exp.Notices)
	}
}

// A model whose head is its embedding table trains: the head reads the "embed" scope a second time in
// every graph that builds the whole model.
func TestTiedEmbeddingsTrain(t *testing.T) {
	exp := tinyExperiment(t, t.TempDir())
	exp.Model.TieEmbeddings = true
	exp.Train.Steps, exp.Train.WarmupSteps = 1, 0
	if _, err := Run(context.Background(), exp, quiet()); err != nil {
		t.Fatal(err)
	}
}

// A run on an MQAR mix trains on batches of each shape (one compiled step per shape) and reports the
// longest row length; a shape that cannot hold its pairs is refused naming its entry.
func TestMQARMixTrains(t *testing.T) {
	exp := tinyExperiment(t, t.TempDir())
	exp.Data.MQARMix = []configs.MQARShape{{SeqLen: 16, NumPairs: 2}, {SeqLen: 24, NumPairs: 3}}
	exp.Train.Steps, exp.Train.WarmupSteps = 4, 0
	trainSrc, _, err := Sources(exp)
	if err != nil {
		t.Fatal(err)
	}
	lengths := map[int]bool{}
	for i := int64(0); i < 16; i++ {
		b, err := trainSrc.BatchAt(i)
		if err != nil {
			t.Fatal(err)
		}
		lengths[b.SeqLen] = true
	}
	if !lengths[16] || !lengths[24] || len(lengths) != 2 || exp.Data.SeqLen() != 24 {
		t.Fatalf("batch lengths %v, seq_len %d: want both shapes (16 and 24) and 24", lengths, exp.Data.SeqLen())
	}
	if _, err := Run(context.Background(), exp, quiet()); err != nil {
		t.Fatal(err)
	}
	exp.Data.MQARMix[1].NumPairs = 9
	if err := exp.Validate(); err == nil || !strings.Contains(err.Error(), "data.mqar_mix[1].seq_len = 24") {
		t.Fatalf("got %v, want an error naming data.mqar_mix[1].seq_len", err)
	}
}

// A passkey run on data.passkey_lengths trains on batches of each length and reports the longest;
// a length too short for the prompt is refused naming its entry.
func TestPasskeyLengthsTrains(t *testing.T) {
	exp, err := configs.Parse("pk_mix", []byte(`
name: pk_mix
seed: 3
runs_dir: `+t.TempDir()+`
model: {vocab: 260, d_model: 8, layers: [deltanet], mlp_hidden: -1, deltanet: {heads: 1, head_dim_k: 8, chunk_size: 64}}
data: {task: passkey, passkey: {random_depth: true, random_filler: 0.5}, passkey_lengths: [256, 320]}
train: {steps: 2, batch_size: 2, warmup_steps: 0, eval_batches: 1, log_every: 1, checkpoint_every: 2}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	trainSrc, evalSrc, err := Sources(exp)
	if err != nil {
		t.Fatal(err)
	}
	lengths := map[int]bool{}
	for i := int64(0); i < 16; i++ {
		for _, src := range []data.Source{trainSrc, evalSrc} {
			b, err := src.BatchAt(i)
			if err != nil {
				t.Fatal(err)
			}
			lengths[b.SeqLen] = true
		}
	}
	if !lengths[256] || !lengths[320] || len(lengths) != 2 || exp.Data.SeqLen() != 320 {
		t.Fatalf("batch lengths %v, seq_len %d: want both lengths (256 and 320) and 320", lengths, exp.Data.SeqLen())
	}
	if _, err := Run(context.Background(), exp, quiet()); err != nil {
		t.Fatal(err)
	}
	exp.Data.PasskeyLengths[0] = 100
	if err := exp.Validate(); err == nil || !strings.Contains(err.Error(), "data.passkey_lengths[0] = 100: too short") {
		t.Fatalf("got %v, want an error naming data.passkey_lengths[0]", err)
	}
	exp.Data.Task, exp.Data.MQAR = "mqar", data.MQAR{Vocab: 32, SeqLen: 16, NumPairs: 2, PowerA: 0.01}
	if err := exp.Validate(); err == nil || !strings.Contains(err.Error(), "data.passkey_lengths") {
		t.Fatalf("passkey_lengths with task mqar: got %v, want an error naming data.passkey_lengths", err)
	}
}
