package model

import (
	"strings"
	"testing"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"
)

// identity is a toy mixer with no settings and no state: what a new mixer package has to provide.
type identity struct{}

func (identity) Apply(_ *mlmodel.Scope, x *Node, _ []*Node) (*Node, []*Node) { return x, nil }
func (identity) StateSpecs(int, dtypes.DType) []layers.StateSpec             { return nil }
func (identity) ApplyDocuments(_ *mlmodel.Scope, x *Node, _ []*Node, _ *Node) (*Node, []*Node) {
	return x, nil
}

// Adding a mixer is its code plus one table entry: the toy identity mixer becomes a layer type that
// Validate, New, Types and InUse all know.
func TestAddingAMixerIsOneTableEntry(t *testing.T) {
	saved := mixerTables
	defer func() { mixerTables = saved }()
	mixerTables = append(mixerTables, []layers.MixerType{{Name: "identity", Build: func(any, int) (layers.Mixer, error) { return identity{}, nil }}})

	cfg := DefaultConfig()
	cfg.Layers = LayerTypes("identity", "attention")
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Mixers[0].(identity); !ok || !strings.Contains(strings.Join(Types(), ","), "identity") {
		t.Errorf("layer 0 is %T; Types() = %v", m.Mixers[0], Types())
	}
	if in := cfg.InUse(); in.DeltaNet.Heads != 0 || in.Attention.Heads == 0 {
		t.Errorf("InUse kept unused sections or dropped the used one: %+v", in)
	}
	cfg.Layers[0] = Layer{Type: "identity", Settings: "heads: 1\n", SettingsKey: "deltanet"}
	if _, err := New(cfg); err == nil {
		t.Error("settings on a layer type without a section were accepted")
	}
}

// Per-layer settings apply to their layer only: two gated DeltaNet layers with 2 and 4 heads.
func TestPerLayerSettings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Layers = LayerTypes("gated_deltanet", "gated_deltanet")
	cfg.DeltaNet.Heads, cfg.DeltaNet.HeadDimK = 2, 8
	wide := Layer{}
	if err := wide.UnmarshalYAML(mustNode(t, "{type: gated_deltanet, deltanet: {heads: 4}}")); err != nil {
		t.Fatal(err)
	}
	cfg.Layers[1] = wide
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	specs := m.LayerStateSpecs(1)
	if h0, h1 := specs[0][0].Shape.Dimensions[1], specs[1][0].Shape.Dimensions[1]; h0 != 2 || h1 != 4 {
		t.Errorf("state heads %d and %d, want 2 and 4 (%v / %v)", h0, h1, specs[0][0], specs[1][0])
	}
	if cfg.DeltaNet.Heads != 2 {
		t.Errorf("the shared section changed to %d heads", cfg.DeltaNet.Heads)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"{type: gated_deltanet, titans: {heads: 4}}", `"titans" settings on a gated_deltanet layer, whose section is "deltanet"`},
		{"{type: gated_deltanet, deltanet: {headz: 4}}", "model.layers[1].deltanet"},
		{"{type: gated_deltanet, deltanet: {gate: false}}", `deltanet.gate = false contradicts layer type "gated_deltanet"`},
	} {
		l := Layer{}
		if err := l.UnmarshalYAML(mustNode(t, bad.yaml)); err != nil {
			t.Fatal(err)
		}
		cfg.Layers[1] = l
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one naming %q", bad.yaml, err, bad.want)
		}
	}
}

func mustNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}
