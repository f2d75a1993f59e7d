package checkpoints_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/gomlx/core/tensors"
)

// exportStream runs a prompt through a fresh model, exports its weights and the state after the prompt,
// and returns the logits of continuing from that state in the same process, and the state.
func exportStream(t *testing.T, cfg model.Config, dir string, prompt, next *tensors.Tensor) (*tensors.Tensor, []*tensors.Tensor) {
	t.Helper()
	m, store := newModel(t, cfg)
	exec := streamExec(t, m, store)
	defer exec.Finalize()
	_, state := call(t, exec, prompt, nil)
	continued, _ := call(t, exec, next, state)
	fromScratch, _ := call(t, exec, next, nil)
	if lt.RelRMS(lt.Floats(fromScratch), lt.Floats(continued)) < 1e-3 {
		t.Fatalf("layers %v: the state after the prompt hardly changes the next logits; the test would prove nothing", cfg.Layers)
	}
	if _, err := checkpoints.Export(dir, store, checkpoints.ExportOptions{Architecture: cfg}); err != nil {
		t.Fatal(err)
	}
	arch, err := checkpoints.EncodeArchitecture(cfg)
	if err != nil {
		t.Fatal(err)
	}
	meta := checkpoints.StateMeta{Tokens: prompt.Shape().Dimensions[1], Architecture: arch}
	if err := checkpoints.SaveState(filepath.Join(dir, "state.safetensors"), m.StateSpecs(1), state, meta); err != nil {
		t.Fatal(err)
	}
	return continued, state
}

// A memory state exported after a prompt and loaded by a fresh model, store and executables (all a new
// process would have) gives the same next-token logits, bit for bit, as continuing in the first process.
func TestStateExportContinuesTheStreamEveryMixer(t *testing.T) {
	prompt, next := ids(1, 7, 4), ids(1, 3, 9)
	for _, typ := range model.Types() {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			want, state := exportStream(t, tinyConfig(typ), dir, prompt, next)

			imp, err := checkpoints.Import(dir)
			if err != nil {
				t.Fatal(err)
			}
			var cfg model.Config
			if err := imp.DecodeArchitecture(&cfg); err != nil {
				t.Fatal(err)
			}
			m, err := model.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			store, err := imp.NewStore(m.DType)
			if err != nil {
				t.Fatal(err)
			}
			arch, _ := checkpoints.EncodeArchitecture(cfg)
			loaded, meta, err := checkpoints.LoadState(filepath.Join(dir, "state.safetensors"), m.StateSpecs(1), arch)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Tokens != 7 {
				t.Fatalf("state records %d tokens, want 7", meta.Tokens)
			}
			for i, spec := range m.StateSpecs(1) {
				if spec.Shape.DType.IsFloat() {
					assertIdentical(t, "state "+spec.Name, loaded[i], state[i])
				} else if loaded[i].Value().(int32) != state[i].Value().(int32) {
					t.Fatalf("state %s = %v, want %v", spec.Name, loaded[i].Value(), state[i].Value())
				}
			}
			exec := streamExec(t, m, store)
			defer exec.Finalize()
			got, _ := call(t, exec, next, loaded)
			if err := imp.Check(store); err != nil {
				t.Fatal(err)
			}
			assertIdentical(t, typ+" next-token logits from the loaded state", got, want)
		})
	}
}

func TestLoadStateErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig("swa")
	exportStream(t, cfg, dir, ids(1, 6, 1), ids(1, 2, 3))
	file := filepath.Join(dir, "state.safetensors")
	m, _ := model.New(cfg)
	arch, _ := checkpoints.EncodeArchitecture(cfg)

	other := cfg
	other.SlidingWindow.Window = 6
	otherArch, _ := checkpoints.EncodeArchitecture(other)
	if _, _, err := checkpoints.LoadState(file, m.StateSpecs(1), otherArch); err == nil || !strings.Contains(err.Error(), "sliding_window.window: 4 -> 6") {
		t.Errorf("different architecture: got %v, want the differing field named", err)
	}
	if _, _, err := checkpoints.LoadState(file, m.StateSpecs(2), arch); err == nil || !strings.Contains(err.Error(), `state tensor "layer_0/k"`) {
		t.Errorf("different batch: got %v, want the tensor named", err)
	}
	if _, _, err := checkpoints.LoadState(filepath.Join(dir, checkpoints.WeightsFile), m.StateSpecs(1), arch); err == nil || !strings.Contains(err.Error(), "not a memory-state file") {
		t.Errorf("weights file as state: got %v", err)
	}
	body, _ := os.ReadFile(file)
	if err := os.WriteFile(file, body[:len(body)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := checkpoints.LoadState(file, m.StateSpecs(1), arch); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("truncated state: got %v, want an error naming %s", err, file)
	}
	var md map[string]any
	n := int(body[0]) | int(body[1])<<8
	_ = json.Unmarshal(body[8:8+n], &md)
	if md["__metadata__"].(map[string]any)["format"] != "engram-state" {
		t.Errorf("metadata: %v", md["__metadata__"])
	}
}
