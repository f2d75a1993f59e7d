package deltanet

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// groupHeads maps value head j to q/k head j / group (fla's i_h = i_hv // (HV // H)): heads [a, b] with
// groups of 3 become [a, a, a, b, b, b], not [a, b, a, b, a, b].
func TestGroupHeadsRepeatsEachHeadConsecutively(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions([]float64{1, 10, 2, 20}, 1, 1, 2, 2) // heads [1, 10], [2, 20]
	out := lt.RunOp(func(in []*Node) []*Node { return []*Node{groupHeads(in[0], 3)} }, []*tensors.Tensor{x})[0]
	want := []float64{1, 10, 1, 10, 1, 10, 2, 20, 2, 20, 2, 20}
	got := lt.Floats(out)
	if out.Shape().String() != "(Float64)[1, 1, 6, 2]" || len(got) != len(want) {
		t.Fatalf("got %s %v", out.Shape(), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
