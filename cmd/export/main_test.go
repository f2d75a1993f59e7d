package main

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/train"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// A trained run exported by the command holds the checkpoint's values exactly, and its state export
// after three ids records position 3.
func TestExportTrainedRun(t *testing.T) {
	dir := t.TempDir()
	exp, err := configs.Parse("tiny", []byte(`
name: tiny
seed: 3
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: [swa], mlp_hidden: 32, sliding_window: {heads: 2, window: 4}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 2, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := train.Options{Log: discard{}}
	trained, err := train.NewRunner(exp, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trained.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	runDir, out := filepath.Join(dir, "tiny"), filepath.Join(dir, "export")
	r, err := train.Open(runDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := exportWeights(r, runDir, out, "float32"); err != nil {
		t.Fatal(err)
	}
	imp, err := checkpoints.Import(out)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Manifest.Source.Step != 2 || imp.Manifest.Tokenizer.Type != "ids" {
		t.Fatalf("manifest source %+v tokenizer %+v", imp.Manifest.Source, imp.Manifest.Tokenizer)
	}
	count := 0
	for v := range trained.Store.IterVariables() {
		if !v.Trainable {
			continue
		}
		count++
		e, ok := imp.Weights.Get(checkpoints.TensorName(v.Path()))
		if !ok {
			t.Fatalf("trained variable %s missing from the export", v.Path())
		}
		if got, want := floats32(e.Data), lt.Floats(v.MustValue()); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: exported %v, trained %v", v.Path(), got[:2], want[:2])
		}
	}
	if count != len(imp.Manifest.Tensors) {
		t.Fatalf("%d trained variables, %d exported", count, len(imp.Manifest.Tensors))
	}

	if err := exportState(r, out, "", "1, 2,3"); err != nil {
		t.Fatal(err)
	}
	arch, _ := checkpoints.EncodeArchitecture(r.Model.Config)
	state, meta, err := checkpoints.LoadState(filepath.Join(out, "state.safetensors"), r.Model.StateSpecs(1), arch)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Tokens != 3 || state[2].Value().(int32) != 3 {
		t.Fatalf("state after 3 ids: tokens %d, position %v", meta.Tokens, state[2].Value())
	}
}

// floats32 decodes little-endian float32 bytes.
func floats32(raw []byte) []float64 {
	out := make([]float64, len(raw)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out
}

func TestPromptIDs(t *testing.T) {
	if got, err := promptIDs("Hi", "", 260); err != nil || !reflect.DeepEqual(got, []int32{'H', 'i'}) {
		t.Errorf("text: %v %v", got, err)
	}
	for _, c := range []struct{ text, ids, want string }{
		{"", "", "exactly one"},
		{"a", "1", "exactly one"},
		{"", "1,x", `item 2 "x"`},
		{"", "1,40", "id 40, outside"},
		{"é", "", "id 195, outside"},
	} {
		if _, err := promptIDs(c.text, c.ids, 32); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("prompt %q ids %q: got %v, want %q", c.text, c.ids, err, c.want)
		}
	}
}
