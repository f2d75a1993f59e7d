package export

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/engramlx/engram/configs"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/train"
	"github.com/gomlx/gomlx/core/tensors"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// trainedRun trains a tiny run on the copy task (model and extra sections in YAML) for a few steps and
// reopens it as cmd/export does.
func trainedRun(t *testing.T, modelAndSections string) *train.Runner {
	t.Helper()
	dir := t.TempDir()
	exp, err := configs.Parse("tiny", []byte(`
name: tiny
seed: 5
runs_dir: `+dir+`
`+modelAndSections+`
data: {task: copy, copy: {vocab: 8, seq_len: 12, length: 5}}
train: {steps: 3, batch_size: 2, warmup_steps: 1, learning_rate: 0.01, eval_batches: 1, log_every: 1}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), exp, train.Options{Log: discard{}}); err != nil {
		t.Fatal(err)
	}
	r, err := train.Open(filepath.Join(dir, "tiny"), train.Options{Log: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustFromRun(t *testing.T, r *train.Runner) *Model {
	t.Helper()
	m, err := FromRun(r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// trainedRMT is a tiny RMT run whose backbone layers have type layer (extra: more rmt settings).
func trainedRMT(t *testing.T, layer, extra string) *train.Runner {
	t.Helper()
	return trainedRun(t, `model: {vocab: 8, d_model: 8, layers: [`+layer+`], mlp_hidden: 16, attention: {heads: 2, max_context: 16},
  deltanet: {heads: 2, head_dim_k: 4, chunk_size: 4}}
rmt: {enabled: true, memory_size: 2, segment_len: 4`+extra+`}`)
}

// An RMT model's export holds its learned initial memory and its rmt settings; its state after a prompt,
// loaded into a fresh store built from the export, continues the stream with bit-identical logits.
func TestRMTExportAndStateRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, layer, extra string }{
		{"attention", "attention", ""},
		{"gated_deltanet_carry_state", "gated_deltanet", ", carry_state: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := trainedRMT(t, tc.layer, tc.extra)
			m := mustFromRun(t, r)
			out := t.TempDir()
			man, err := Weights(m, out, "float32", "tiny-rmt", 3)
			if err != nil {
				t.Fatal(err)
			}
			if man.Tensors["rmt.memory"] != "/rmt/memory" {
				t.Errorf("export lacks the learned memory: tensors %v", man.Tensors)
			}
			var section map[string]any
			if err := json.Unmarshal(man.RMT, &section); err != nil || section["memory_size"] != 2.0 || section["segment_len"] != 4.0 || section["enabled"] != true {
				t.Errorf("config.json rmt section %s (%v)", man.RMT, err)
			}

			prompt, next := []int32{1, 2, 3, 4, 5, 6, 7, 1}, []int32{2, 3, 4, 5}
			if _, err := State(m, out, prompt[:5]); err == nil {
				t.Error("a prompt of 5 tokens with segments of 4 was accepted")
			}
			file, err := State(m, out, prompt)
			if err != nil {
				t.Fatal(err)
			}
			step, err := m.Stepper()
			if err != nil {
				t.Fatal(err)
			}
			defer step.Finalize()
			_, state, err := Run(step, prompt, nil)
			if err != nil {
				t.Fatal(err)
			}
			continued, _, err := Run(step, next, state)
			if err != nil {
				t.Fatal(err)
			}
			fresh, _, err := Run(step, next, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := lt.RelRMS(lt.Floats(fresh), lt.Floats(continued)); d < 1e-4 {
				t.Fatalf("the state after the prompt hardly changes the next logits (rel RMS %g): the test would prove nothing", d)
			}

			loaded, imp, err := Load(out, r.Backend)
			if err != nil {
				t.Fatal(err)
			}
			saved, meta, err := LoadState(loaded, file)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Tokens != len(prompt) {
				t.Errorf("state meta: %d tokens, want %d", meta.Tokens, len(prompt))
			}
			loadedStep, err := loaded.Stepper()
			if err != nil {
				t.Fatal(err)
			}
			defer loadedStep.Finalize()
			got, _, err := Run(loadedStep, next, saved)
			if err != nil {
				t.Fatal(err)
			}
			assertBitIdentical(t, got, continued)
			// The imported model, run over the prompt from its own (learned) initial state, reaches the
			// saved state; that run also reads rmt/memory, so Check sees every exported tensor used.
			_, again, err := Run(loadedStep, prompt, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range again {
				assertBitIdentical(t, again[i], saved[i])
			}
			if err := imp.Check(loaded.Store); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func assertBitIdentical(t *testing.T, got, want *tensors.Tensor) {
	t.Helper()
	g, w := lt.Floats(got), lt.Floats(want)
	if len(g) != len(w) || len(w) == 0 {
		t.Fatalf("%d logits, want %d", len(g), len(w))
	}
	for i := range g {
		if math.Float64bits(g[i]) != math.Float64bits(w[i]) {
			t.Fatalf("logit %d: %.9g after export + import, %.9g in the exporting process", i, g[i], w[i])
		}
	}
}

// config.json holds only the sections the model's layers read, and the conventions block.
func TestConfigJSONOnlyUsedSections(t *testing.T) {
	r := trainedRMT(t, "attention", "")
	man, err := Weights(mustFromRun(t, r), t.TempDir(), "float32", "x", 3)
	if err != nil {
		t.Fatal(err)
	}
	var arch map[string]any
	if err := json.Unmarshal(man.Architecture, &arch); err != nil {
		t.Fatal(err)
	}
	for _, unused := range []string{"deltanet", "titans", "mom", "sliding_window"} {
		if _, ok := arch[unused]; ok {
			t.Errorf("config.json architecture holds the unused section %q", unused)
		}
	}
	if _, ok := arch["attention"]; !ok || man.Conventions["dense"] == "" || man.Conventions["rope"] == "" {
		t.Errorf("attention section %v, conventions %v", ok, man.Conventions)
	}
}

// A Titans memory (and each Miras model: moneta, yaad, memora) exported and continued after a prompt
// that ends inside a chunk computes what one pass over prompt + continuation computes (export streams
// with the partial chunk carried; the saved state is loaded back before continuing).
func TestTitansStateContinuesMidChunk(t *testing.T) {
	for _, layer := range []string{"titans_lmm", "moneta", "yaad", "memora"} {
		t.Run(layer, func(t *testing.T) {
			r := trainedRun(t, "model: {vocab: 8, d_model: 8, layers: ["+layer+"], mlp_hidden: 16, titans: {heads: 2, head_dim: 4, chunk_size: 4}}")
			m := mustFromRun(t, r)
			prompt, next := []int32{1, 2, 3, 4, 5}, []int32{6, 7, 2}
			file, err := State(m, t.TempDir(), prompt)
			if err != nil {
				t.Fatal(err)
			}
			saved, _, err := LoadState(m, file)
			if err != nil {
				t.Fatal(err)
			}
			step, err := m.Stepper()
			if err != nil {
				t.Fatal(err)
			}
			defer step.Finalize()
			continued, _, err := Run(step, next, saved)
			if err != nil {
				t.Fatal(err)
			}
			whole, _, err := Run(step, append(append([]int32{}, prompt...), next...), nil)
			if err != nil {
				t.Fatal(err)
			}
			const vocab = 8
			tail := make([]float32, 0, len(next)*vocab)
			for _, x := range lt.Floats(whole)[len(prompt)*vocab:] {
				tail = append(tail, float32(x))
			}
			lt.AssertClose(t, layer+": continued after 5 tokens vs one pass", continued,
				tensors.FromFlatDataAndDimensions(tail, 1, len(next), vocab), 1e-5)
		})
	}
}
