package model

import (
	"strings"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"go.yaml.in/yaml/v3"
)

// A layer's scope overrides its type as the name of its variables' scope (how a renamed layer type keeps
// a saved run's checkpoint keys), and survives a YAML round trip.
func TestLayerScopeNamesVariables(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeltaNet.Heads, cfg.DeltaNet.HeadDimK = 2, 4
	var renamed Layer
	if err := renamed.UnmarshalYAML(mustNode(t, "{type: mamba2_style, scope: old_name}")); err != nil {
		t.Fatal(err)
	}
	cfg.Layers = []Layer{renamed}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := mlmodel.NewStore()
	exec := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, ids *Node) *Node {
		h, _ := m.Hidden(scope, ids, nil)
		return h
	})
	defer exec.Finalize()
	exec.MustCall([][]int32{{1, 2, 3}})
	var paths []string
	for v := range store.IterVariables() {
		paths = append(paths, v.Path())
	}
	joined := strings.Join(paths, " ")
	if !strings.Contains(joined, "/layer_0/old_name/a_proj/weight") || strings.Contains(joined, "mamba2_style") {
		t.Errorf("variables %v, want them under /layer_0/old_name", paths)
	}
	body, err := yaml.Marshal(renamed)
	if err != nil {
		t.Fatal(err)
	}
	var again Layer
	if err := again.UnmarshalYAML(mustNode(t, string(body))); err != nil || again != renamed {
		t.Errorf("round trip of %+v gave %+v (%v) via %s", renamed, again, err, body)
	}
}
