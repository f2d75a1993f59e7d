package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/export"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/train"
)

// command runs the command with args; a non-zero exit is an error holding what it printed.
func command(args ...string) error {
	var stderr bytes.Buffer
	if code := run(args, io.Discard, &stderr); code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// -h exits 0 with the description; -run missing or contradictory flags exit 2.
func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "export: write a run's weights") {
		t.Errorf("-h: exit %d, output:\n%s", code, stderr.String())
	}
	for _, args := range [][]string{{"-state"}, {"-run", "x", "-import-fla", "f.safetensors"}, {"-run", "x", "-state", "-import-fla", "f", "-layer", "0"}} {
		stderr.Reset()
		if code := run(args, io.Discard, &stderr); code != 2 || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, output %q; want 2 and one line", args, code, stderr.String())
		}
	}
}

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
	if err := command("-run", runDir, "-out", out); err != nil {
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

	if err := command("-run", runDir, "-out", out, "-state", "-ids", "1, 2,3"); err != nil {
		t.Fatal(err)
	}
	m, err := export.FromRun(r)
	if err != nil {
		t.Fatal(err)
	}
	state, meta, err := export.LoadState(m, filepath.Join(out, "state.safetensors"))
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

// TestImportFLA: -import-fla -layer 0 with a whole-model prefix writes an export whose gated_deltanet
// layer holds fla's weights in Engram's layouts and whose other weights are the checkpoint's; a layer
// that is not gated_deltanet, or fla weights of other sizes, are errors naming the layer, file and tensor.
func TestImportFLA(t *testing.T) {
	dir := t.TempDir()
	exp, err := configs.Parse("gdn", []byte(`
name: gdn
seed: 3
runs_dir: `+dir+`
model: {vocab: 32, d_model: 16, layers: [gated_deltanet, swa], mlp_hidden: 32, sliding_window: {heads: 2, window: 4},
  deltanet: {heads: 2, head_dim_k: 4, expand_v: 2, chunk_size: 8}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 1, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1}
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
	// fla's state_dict of a 2-layer model: key_dim 8, value_dim 16, hidden 16.
	shapes := map[string][]int{
		"q_proj.weight": {8, 16}, "k_proj.weight": {8, 16}, "v_proj.weight": {16, 16}, "g_proj.weight": {16, 16},
		"a_proj.weight": {2, 16}, "b_proj.weight": {2, 16}, "A_log": {2}, "dt_bias": {2},
		"q_conv1d.weight": {8, 1, 4}, "k_conv1d.weight": {8, 1, 4}, "v_conv1d.weight": {16, 1, 4},
		"o_norm.weight": {8}, "o_proj.weight": {16, 16},
	}
	var entries []checkpoints.Entry
	fla := map[string][]float64{}
	for name, shape := range shapes {
		n := 1
		for _, d := range shape {
			n *= d
		}
		values := make([]float64, n)
		data := make([]byte, 4*n)
		for i := range values {
			values[i] = float64(float32(0.01*float64(i) + 0.001*float64(len(name))))
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(values[i])))
		}
		fla[name] = values
		entries = append(entries, checkpoints.Entry{Name: "model.layers.0.attn." + name, DType: checkpoints.F32, Shape: shape, Data: data},
			checkpoints.Entry{Name: "model.layers.1.attn." + name, DType: checkpoints.F32, Shape: shape, Data: data})
	}
	file := filepath.Join(dir, "fla.safetensors")
	var buf strings.Builder
	if err := checkpoints.WriteSafetensors(&buf, entries, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	runDir, out := filepath.Join(dir, "gdn"), filepath.Join(dir, "export")
	prefix := "model.layers.{layer}.attn."
	if err := command("-run", runDir, "-out", out, "-import-fla", file, "-layer", "0", "-fla-prefix", prefix); err != nil {
		t.Fatal(err)
	}
	imp, err := checkpoints.Import(out)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) ([]float64, []int) {
		e, ok := imp.Weights.Get(name)
		if !ok {
			t.Fatalf("export lacks %s", name)
		}
		return floats32(e.Data), e.Shape
	}
	// Linear [out, in] -> [in, out]: Engram q_proj (i, o) = fla (o, i).
	q, qShape := get("layer_0.gated_deltanet.q_proj.weight")
	if !reflect.DeepEqual(qShape, []int{16, 8}) || q[3*8+5] != fla["q_proj.weight"][5*16+3] {
		t.Errorf("q_proj: shape %v, values not fla's transposed", qShape)
	}
	// Conv [C, 1, W] -> [W, C]: Engram (j, c) = fla (c, 0, j).
	conv, convShape := get("layer_0.gated_deltanet.v_conv.weight")
	if !reflect.DeepEqual(convShape, []int{4, 16}) || conv[2*16+7] != fla["v_conv1d.weight"][7*4+2] {
		t.Errorf("v_conv: shape %v, values not fla's", convShape)
	}
	if aLog, _ := get("layer_0.gated_deltanet.A_log"); !reflect.DeepEqual(aLog, fla["A_log"]) {
		t.Errorf("A_log %v, want %v", aLog, fla["A_log"])
	}
	for v := range trained.Store.IterVariables() {
		name := checkpoints.TensorName(v.Path())
		if !v.Trainable || strings.HasPrefix(name, "layer_0.gated_deltanet.") {
			continue
		}
		if got, _ := get(name); !reflect.DeepEqual(got, lt.Floats(v.MustValue())) {
			t.Errorf("%s is not the checkpoint's", name)
		}
	}

	for _, c := range []struct {
		layers, prefix, want string
	}{
		{"1", prefix, "-layer 1: the model's layers are [gated_deltanet swa]"},
		{"0", "", `fla.safetensors: tensor "q_proj.weight" is missing`},
		{"x", prefix, `-layer: item 1 "x"`},
	} {
		err := command("-run", runDir, "-out", filepath.Join(dir, "bad"), "-import-fla", file, "-layer", c.layers, "-fla-prefix", c.prefix)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-layer %s -fla-prefix %q: error %v, want %q", c.layers, c.prefix, err, c.want)
		}
	}
}
