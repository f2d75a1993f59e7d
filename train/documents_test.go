package train

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
)

// packedExperiment writes documents of 5, 11, 7, 9 and 16 tokens (next-token labels inside each
// document, none after its last token) to a Parquet file and returns a tiny attention + gated DeltaNet
// experiment training on it in pack mode with rows of 16, which the documents tile exactly (3 rows).
func packedExperiment(t *testing.T, extra string) configs.Experiment {
	return packedExperimentWith(t, "[attention, gated_deltanet]", extra)
}

// packedExperimentWith is packedExperiment with the given layers.
func packedExperimentWith(t *testing.T, layers, extra string) configs.Experiment {
	t.Helper()
	dir := t.TempDir()
	rows := data.NewRows()
	rng := lt.NewRand(5)
	for _, n := range []int{5, 11, 7, 9, 16} {
		ids, labels := make([]int32, n), make([]int32, n)
		for i := range ids {
			ids[i] = int32(rng.IntN(32))
		}
		for i := range labels {
			labels[i] = data.Ignore
			if i+1 < n {
				labels[i] = ids[i+1]
			}
		}
		rows.Append(ids, labels)
	}
	file := filepath.Join(dir, "docs.parquet")
	if err := data.WriteFile(file, data.OutParquet, rows); err != nil {
		t.Fatal(err)
	}
	exp, err := configs.Parse("packed", []byte(`
name: packed
seed: 3
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: `+layers+`, mlp_hidden: 32, attention: {heads: 2, max_context: 64},
        deltanet: {heads: 2, head_dim_k: 4, chunk_size: 8}, titans: {heads: 2, head_dim: 4, chunk_size: 2, segment_size: 4}}
data: {task: files, seq_len: 16, train: {path: `+file+`, mode: pack}, eval: {path: `+file+`, mode: pack}}
train: {steps: 4, batch_size: 3, warmup_steps: 1, eval_batches: 1, log_every: 1, checkpoint_every: 4}
`+extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestPackedTrainingResetsAtDocuments: training on packed files with resets runs, and the mask reaches
// the model: the trained model's loss on the packed rows equals its loss on the same documents one per
// row (pad mode), and differs from the loss on the packed rows without the mask (state and attention
// then cross documents). If train dropped DocStart, the first two would differ.
// titans_mac runs too: its segments (4 tokens) are cut from each document's own start.
func TestPackedTrainingResetsAtDocuments(t *testing.T) {
	for _, first := range []string{"attention", "titans_mac"} {
		t.Run(first, func(t *testing.T) { testPackedTraining(t, packedExperimentWith(t, "["+first+", gated_deltanet]", "")) })
	}
}

func testPackedTraining(t *testing.T, exp configs.Experiment) {
	r, err := NewRunner(exp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	summary, err := r.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lossOn := func(cfg data.FileConfig, batch int) float64 {
		t.Helper()
		rows, err := data.ReadRows(cfg, 32)
		if err != nil {
			t.Fatal(err)
		}
		src, err := data.NewFileSource(cfg, rows, batch, 16, 1)
		if err != nil {
			t.Fatal(err)
		}
		loss, _, err := r.evaluate(&indexedDataset{src: src, vocab: 32, slots: src.LabelSlots(), limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return loss
	}
	off := false
	cfg := exp.Data.Train
	packed := lossOn(cfg, 3)
	cfg.Mode = data.ModePad
	separate := lossOn(cfg, 5)
	cfg.Mode, cfg.ResetAtDocumentStart = data.ModePack, &off
	leaking := lossOn(cfg, 3)
	t.Logf("eval loss after %d steps: packed with resets %.6f, one document per row %.6f, packed without resets %.6f (run summary %.6f)",
		exp.Train.Steps, packed, separate, leaking, summary.EvalLoss)
	if math.Abs(packed-separate) > 1e-5*separate {
		t.Errorf("packed rows with resets: loss %.7g, documents alone: %.7g; they must be equal", packed, separate)
	}
	if math.Abs(packed-leaking) < 1e-4 {
		t.Errorf("packed rows with and without resets have the same loss %.7g: the mask does not reach the model", packed)
	}
}

// TestPackedResetsRejectRMT: rmt writes its memory per segment, so packed rows with resets are refused
// at start, naming the setting that turns them off.
func TestPackedResetsRejectRMT(t *testing.T) {
	exp := packedExperiment(t, "rmt: {enabled: true, memory_size: 2, segment_len: 8}\n")
	_, err := NewRunner(exp, quiet())
	if err == nil || !strings.Contains(err.Error(), "reset_at_document_start") {
		t.Fatalf("NewRunner with rmt and packed resets: error %v, want one naming reset_at_document_start", err)
	}
}
