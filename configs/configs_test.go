package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/model"
)

// Every YAML in configs/ (and configs/sweeps/ when present) is loaded strictly and validated, both from
// the file and from the embedded copy.
func TestEveryConfigLoads(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no YAML files found in configs/")
	}
	for _, f := range files {
		if _, err := Load(f, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := Load(strings.TrimSuffix(f, ".yaml"), nil); err != nil {
			t.Errorf("built-in %s: %v", f, err)
		}
	}
}

func TestOverrides(t *testing.T) {
	exp, err := Load("quickstart", []string{"model.d_model=128", "model.layers=[attention, swa, attention]", "train.learning_rate=1e-4"})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Model.DModel != 128 || len(exp.Model.Layers) != 3 || exp.Model.Layers[1].Type != "swa" || exp.Train.LearningRate != 1e-4 {
		t.Errorf("overrides not applied: d_model %d layers %v lr %g", exp.Model.DModel, exp.Model.Layers, exp.Train.LearningRate)
	}
	// Untouched keys keep the file's values.
	if exp.Data.MQAR.SeqLen != 64 {
		t.Errorf("data.mqar.seq_len = %d, want the file's 64", exp.Data.MQAR.SeqLen)
	}
}

func TestStrictErrorsNameKeyAndLine(t *testing.T) {
	_, err := Parse("x.yaml", []byte("name: a\ntrain:\n  steps: 10\n  warmup: 3\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `x.yaml: line 4: unknown key "warmup"`) {
		t.Errorf("got %v", err)
	}
	_, err = Parse("x.yaml", []byte("name: a\n"), []string{"train.steps=ten"})
	if err == nil || !strings.Contains(err.Error(), `-set train.steps=ten: train.steps: cannot use string "ten" as int`) {
		t.Errorf("got %v", err)
	}
	_, err = Parse("x.yaml", []byte("name: a\nmodel:\n  d_model: abc\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `x.yaml: line 3: model.d_model: cannot use string "abc" as int`) {
		t.Errorf("a type error names the line and the key: got %v", err)
	}
	_, err = Parse("x.yaml", []byte("name: a\nmodel: {layers: [attention, mamba]}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `model.layers[1] = "mamba": unknown mixer type`) {
		t.Errorf("got %v", err)
	}
}

func TestDiff(t *testing.T) {
	a, _ := Load("quickstart", nil)
	b, _ := Load("quickstart", []string{"model.attention.heads=4", "model.d_model=32"})
	diff := Diff(a.Model, b.Model, "model")
	if len(diff) != 2 || diff[0] != "model.d_model: 64 -> 32" || diff[1] != "model.attention.heads: 2 -> 4" {
		t.Errorf("diff %q", diff)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// A deltanet switch that contradicts the layer type is a one-line error naming both; a run's config
// saved by an earlier build (which wrote the type's switches into every section) still parses.
func TestSwitchContradictingTheLayerType(t *testing.T) {
	_, err := Parse("x.yaml", []byte("model: {layers: [gated_deltanet], deltanet: {gate: false}}\n"), nil)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `deltanet.gate = false contradicts layer type "gated_deltanet"`) {
		t.Errorf("got %v", err)
	}
	_, err = Parse("x.yaml", []byte("model: {layers: [titans_mac], titans: {variant: mal}}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `titans.variant = "mal" contradicts layer type "titans_mac"`) {
		t.Errorf("got %v", err)
	}
	legacy := []byte("model: {layers: [mamba2_style], deltanet: {heads: 2, gate: true, delta: true}, titans: {variant: lmm}}\n")
	if _, err := Parse("saved.yaml", legacy, nil); err == nil {
		t.Error("a mamba2_style layer with delta: true was accepted")
	}
	exp, err := ParseSaved("saved.yaml", legacy)
	if err != nil || exp.Model.DeltaNet.Heads != 2 {
		t.Errorf("ParseSaved: %v (heads %d)", err, exp.Model.DeltaNet.Heads)
	}
}

// model.layers takes per-layer settings; two GDN layers of different head counts parse, and the
// resolved config written beside a run reads back the same.
func TestPerLayerSettingsRoundTrip(t *testing.T) {
	src := []byte("model: {layers: [gated_deltanet, {type: gated_deltanet, deltanet: {heads: 8}}], deltanet: {heads: 2}}\n")
	exp, err := Parse("x.yaml", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("saved.yaml", body, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if d := Diff(exp.Model.InUse(), again.Model.InUse(), "model"); len(d) > 0 || again.Model.Layers[1].Settings == "" {
		t.Errorf("round trip changed %v:\n%s", d, body)
	}
}

// A run saved before the gla package (testdata/saved_before_gla: the config.yaml such a build wrote, with
// layers [gla, {type: gla, deltanet: ...}]) meant deltanet's scalar-gated member: ParseSaved reads it as
// mamba2_style under scope gla, so its checkpoint keys match. In a new config, and in a run saved since
// (it has a gla section), "gla" is the gla package's layer.
func TestSavedGLARunBeforeTheRename(t *testing.T) {
	file := filepath.Join("testdata", "saved_before_gla", "config.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := ParseSaved(file, src)
	if err != nil {
		t.Fatal(err)
	}
	layers := exp.Model.Layers
	if len(layers) != 2 || layers[0].Type != "mamba2_style" || layers[0].ScopeName() != "gla" ||
		layers[1].Type != "mamba2_style" || layers[1].ScopeName() != "gla" || layers[1].SettingsKey != "deltanet" {
		t.Errorf("layers %+v, want mamba2_style under scope gla (the second with its deltanet settings)", layers)
	}
	body, err := Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSaved(file, body) // a resumed run saves its config again: still the same layers
	if err != nil || len(again.Model.Layers) != 2 || again.Model.Layers[0] != layers[0] || again.Model.Layers[1] != layers[1] {
		t.Errorf("saved again: %+v (%v)", again.Model.Layers, err)
	}
	fresh, err := Parse("x.yaml", []byte("model: {layers: [gla]}\n"), nil)
	if err != nil || fresh.Model.Layers[0].Type != "gla" || fresh.Model.Layers[0].Scope != "" {
		t.Errorf("a new config's gla: %+v (%v)", fresh.Model.Layers, err)
	}
	body, err = Marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if saved, err := ParseSaved("saved.yaml", body); err != nil || saved.Model.Layers[0].Type != "gla" {
		t.Errorf("a run saved with the gla layer came back as %+v (%v)", saved.Model.Layers, err)
	}
}

// titans.mode "tp" (the old name of titans_pytorch) still works, with a notice.
func TestOldTitansModeName(t *testing.T) {
	exp, err := Parse("x.yaml", []byte("model: {layers: [titans_lmm], titans: {mode: tp, ttt_batch_size: 0}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Notices) != 1 || !strings.Contains(exp.Notices[0], `now named "titans_pytorch"`) || exp.Model.Titans.Mode != "titans_pytorch" {
		t.Errorf("notices %v, mode %q (a run saved with tp and resumed with titans_pytorch must compare equal)", exp.Notices, exp.Model.Titans.Mode)
	}
	if exp, err := Load("titans_lmm_tp.yaml", nil); err != nil || exp.Model.Titans.Mode != "titans_pytorch" || len(exp.Notices) != 0 {
		t.Errorf("titans_lmm_tp.yaml: %v (mode %q, notices %v)", err, exp.Model.Titans.Mode, exp.Notices)
	}
}

// An export's architecture written before the gla package (layer type "gla" = the scalar-gated delta-rule
// member, no "gla" section) decodes as that member under the scope "gla", so its weights are found; an
// architecture with a gla section (today's GLA) keeps the type.
func TestDecodeSavedModelMapsLegacyGLA(t *testing.T) {
	legacy := `{"vocab": 64, "d_model": 32, "layers": ["gla", "attention"], "deltanet": {"heads": 2}, "attention": {"heads": 2}}`
	cfg := model.DefaultConfig()
	if err := DecodeSavedModel([]byte(legacy), &cfg); err != nil {
		t.Fatal(err)
	}
	if l := cfg.Layers[0]; l.Type != "mamba2_style" || l.ScopeName() != "gla" || cfg.Layers[1].Type != "attention" || cfg.DeltaNet.Heads != 2 {
		t.Errorf("legacy gla export decoded as %+v (deltanet heads %d), want mamba2_style under scope gla", cfg.Layers, cfg.DeltaNet.Heads)
	}
	current := `{"vocab": 64, "d_model": 32, "layers": ["gla"], "gla": {"heads": 2}}`
	cfg = model.DefaultConfig()
	if err := DecodeSavedModel([]byte(current), &cfg); err != nil {
		t.Fatal(err)
	}
	if l := cfg.Layers[0]; l.Type != "gla" || l.ScopeName() != "gla" || cfg.GLA.Heads != 2 {
		t.Errorf("today's gla export decoded as %+v", cfg.Layers)
	}
	if err := DecodeSavedModel([]byte(`{"d_modle": 3}`), &cfg); err == nil || !strings.Contains(err.Error(), "d_modle") {
		t.Errorf("an unknown key: got %v", err)
	}
}
