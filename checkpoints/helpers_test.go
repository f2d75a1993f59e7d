package checkpoints_test

import (
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// tinyConfig is a one-layer model of mixer type typ, small enough to compile in a blink.
func tinyConfig(typ string) model.Config {
	cfg := model.DefaultConfig()
	cfg.Vocab, cfg.DModel, cfg.MLPHidden, cfg.Layers = 32, 16, 24, model.LayerTypes(typ)
	cfg.Attention.Heads, cfg.Attention.MaxContext = 2, 24
	cfg.SlidingWindow.Heads, cfg.SlidingWindow.Window = 2, 4
	cfg.Titans.Heads, cfg.Titans.HeadDim, cfg.Titans.ChunkSize = 2, 8, 4
	cfg.Titans.PersistentTokens, cfg.Titans.Window, cfg.Titans.SegmentSize = 2, 4, 4
	return cfg
}

// newModel builds cfg's model and a fresh store with a fixed seed.
func newModel(t *testing.T, cfg model.Config) (*model.Model, *mlmodel.Store) {
	t.Helper()
	m, err := model.New(cfg)
	if err != nil {
		t.Fatalf("layers %v: %v", cfg.Layers, err)
	}
	store := mlmodel.NewStore()
	store.SetParam(mlmodel.ParamInitialSeed, int64(11))
	return m, store
}

// streamExec returns an executable mapping (ids [B, T], state...) to (logits [B, T, V], next state...);
// an empty state list starts the sequence.
func streamExec(t *testing.T, m *model.Model, store *mlmodel.Store) *mlmodel.Exec {
	t.Helper()
	exec, err := mlmodel.NewExec(lt.Backend(), store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		var state []*Node
		if len(in) > 1 {
			state = in[1:]
		}
		hidden, next := m.Hidden(scope, in[0], state)
		return append([]*Node{m.Logits(scope, hidden)}, next...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

func call(t *testing.T, exec *mlmodel.Exec, ids *tensors.Tensor, state []*tensors.Tensor) (*tensors.Tensor, []*tensors.Tensor) {
	t.Helper()
	args := []any{ids}
	for _, s := range state {
		args = append(args, s)
	}
	out, err := exec.Call(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out[0], out[1:]
}

func ids(rows, cols int, seed int32) *tensors.Tensor {
	flat := make([]int32, rows*cols)
	for i := range flat {
		flat[i] = (seed + int32(i)*7) % 32
	}
	return tensors.FromFlatDataAndDimensions(flat, rows, cols)
}

// assertIdentical requires bit-for-bit equal float tensors.
func assertIdentical(t *testing.T, what string, got, want *tensors.Tensor) {
	t.Helper()
	g, w := lt.Floats(got), lt.Floats(want)
	if len(g) != len(w) || !got.Shape().Equal(want.Shape()) {
		t.Fatalf("%s: shape %s, want %s", what, got.Shape(), want.Shape())
	}
	// Equal bits prove nothing if the values are degenerate.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("%s: reference holds %v", what, x)
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	if !(hi > lo) {
		t.Fatalf("%s: reference is constant (%g)", what, lo)
	}
	for i := range g {
		if math.Float64bits(g[i]) != math.Float64bits(w[i]) {
			t.Fatalf("%s: element %d is %.9g, want %.9g exactly", what, i, g[i], w[i])
		}
	}
}
