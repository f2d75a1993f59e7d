package layers_test

import (
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Flatten then Unflatten gives every layer its own tensors back, in order, with prefixed names; a nil
// layer state becomes its zero state; a flat list of the wrong length is an error.
func TestStateFlattenRoundTrip(t *testing.T) {
	f64 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float64, dims...) }
	perLayerSpecs := [][]layers.StateSpec{
		{{Name: "S", Shape: f64(2, 3)}},
		{{Name: "k", Shape: f64(2, 1)}, {Name: "position", Shape: shapes.Make(dtypes.Int32)}},
		{{Name: "S", Shape: f64(1)}},
	}
	a := lt.RandNormal(lt.NewRand(1), 1, 2, 3)
	k := lt.RandNormal(lt.NewRand(2), 1, 2, 1)
	var names []string
	out := lt.RunOp(func(in []*Node) []*Node {
		flat, specs := layers.Flatten(in[0].Graph(), [][]*Node{{in[0]}, {in[1], in[2]}, nil}, perLayerSpecs,
			[]string{"layer_0", "layer_1", "layer_2"})
		for _, s := range specs {
			names = append(names, s.Name)
		}
		back, err := layers.Unflatten(flat, perLayerSpecs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := layers.Unflatten(flat[:3], perLayerSpecs); err == nil {
			t.Error("Unflatten of 3 tensors for 4 specs: want an error")
		}
		return []*Node{back[0][0], back[1][0], back[1][1], back[2][0]}
	}, []*tensors.Tensor{a, k, tensors.FromScalar(int32(7))})
	want := []string{"layer_0/S", "layer_1/k", "layer_1/position", "layer_2/S"}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("flat state name %d = %q, want %q", i, names[i], want[i])
		}
	}
	lt.AssertClose(t, "layer 0 S", out[0], a, 0)
	lt.AssertClose(t, "layer 1 k", out[1], k, 0)
	lt.AssertClose(t, "layer 1 position", out[2], tensors.FromScalar(int32(7)), 0)
	lt.AssertClose(t, "layer 2 zero state", out[3], tensors.FromValue([]float64{0}), 0)
}
