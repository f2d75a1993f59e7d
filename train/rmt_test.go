package train

import (
	"context"
	"testing"

	"github.com/engramlx/engram/configs"
)

// An rmt experiment on the copy task with the curriculum trains end to end through Runner: the learned
// memory rmt/memory [m, d_model] exists (only the rmt path creates it), training rows have 1..3
// segments and evaluation rows all 3.
func TestRMTCopyCurriculumTrains(t *testing.T) {
	rmtTrains(t, "attention", "")
}

// RMT around recurrent backbones trains end to end too: gated DeltaNet carrying its own state between
// segments, and Titans' LMM.
func TestRMTAroundRecurrentBackbonesTrains(t *testing.T) {
	t.Run("gated_deltanet", func(t *testing.T) { rmtTrains(t, "gated_deltanet", ", carry_state: true") })
	t.Run("titans_lmm", func(t *testing.T) { rmtTrains(t, "titans_lmm", "") })
}

func rmtTrains(t *testing.T, layer, extra string) {
	exp, err := configs.Parse("tiny-rmt", []byte(`
name: tiny-rmt
seed: 5
runs_dir: `+t.TempDir()+`
model: {vocab: 8, d_model: 8, layers: [`+layer+`], mlp_hidden: 16, attention: {heads: 2, max_context: 16},
  deltanet: {heads: 2, head_dim_k: 4, chunk_size: 4}, titans: {heads: 2, head_dim: 4, chunk_size: 4}}
rmt: {enabled: true, memory_size: 2, segment_len: 4, curriculum: true, bptt_depth: 2`+extra+`}
data: {task: copy, copy: {vocab: 8, seq_len: 12, length: 6}}
train: {steps: 4, batch_size: 2, warmup_steps: 1, learning_rate: 0.01, eval_batches: 1, log_every: 1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(exp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq.SegmentLen() != 4 || (extra == "") != (len(r.Seq.StateSpecs(1)) == 1) {
		t.Fatalf("rmt.enabled = true but the runner trains a %T (segment length %d, state %v)", r.Seq, r.Seq.SegmentLen(), r.Seq.StateSpecs(1))
	}
	summary, err := r.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	memory, ok := weights(t, r)["/rmt/memory"]
	if !ok || len(memory) != 2*8 {
		t.Fatalf("rmt/memory: found %v with %d values, want 16 (memory_size 2 x d_model 8)", ok, len(memory))
	}
	if summary == nil {
		t.Fatal("no summary")
	}
	train, eval, err := Sources(exp)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := int64(0); i < 12; i++ {
		b, _ := train.BatchAt(i)
		seen[b.SeqLen] = true
	}
	if b, _ := eval.BatchAt(0); b.SeqLen != 12 || len(seen) != 3 || !seen[4] || !seen[8] || !seen[12] {
		t.Errorf("eval rows of %d tokens (want 12); training row lengths %v (want 4, 8 and 12)", b.SeqLen, seen)
	}
}

// A stack mixing two gated DeltaNet layers of different head counts (per-layer settings) trains, and
// resuming it sees the same architecture.
func TestPerLayerSettingsTrain(t *testing.T) {
	dir := t.TempDir()
	src := []byte(`
name: two-widths
seed: 2
runs_dir: ` + dir + `
model: {vocab: 16, d_model: 16, mlp_hidden: -1, deltanet: {heads: 2, head_dim_k: 4, chunk_size: 8},
  layers: [gated_deltanet, {type: gated_deltanet, deltanet: {heads: 4}}]}
data: {task: mqar, mqar: {vocab: 16, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 2, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1}
`)
	for range 2 { // the second run resumes (finished: it re-evaluates) with the saved config
		exp, err := configs.Parse("two-widths", src, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRunner(exp, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h := r.Model.LayerStateSpecs(1)[1][0].Shape.Dimensions[1]; h != 4 {
			t.Fatalf("layer 1 has %d heads, want 4", h)
		}
	}
}
