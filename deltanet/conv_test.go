package deltanet

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestDenseEqualsLayers: dense (weight gradient from the shared transposed input) computes layers.Dense's
// output and gradients with respect to x and the weight.
func TestDenseEqualsLayers(t *testing.T) {
	rng := lt.NewRand(12)
	inputs := []*tensors.Tensor{lt.RandNormal(rng, 1, 2, 5, 3), lt.RandNormal(rng, 1, 3, 4)}
	ref := func(in []*Node) []*Node {
		return []*Node{DotGeneral(in[0], []int{2}, nil, in[1], []int{0}, nil)} // layers.Dense's product
	}
	got := func(in []*Node) []*Node {
		x, w := in[0], in[1]
		return []*Node{customGradient([]*Node{x, w},
			func(in []*Node) *Node { return DotGeneral(in[0], []int{2}, nil, in[1], []int{0}, nil) },
			denseGradient(x, TransposeAllAxes(x, 2, 0, 1), w))}
	}
	upstream := lt.RandomUpstream(3, lt.RunOp(ref, inputs))
	wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
	gotOut, gotGrad := lt.OpGradients(got, inputs, upstream)
	lt.AssertClose(t, "output", gotOut[0], wantOut[0], 1e-14)
	lt.AssertClose(t, "gradient of x", gotGrad[0], wantGrad[0], 1e-14)
	lt.AssertClose(t, "gradient of w", gotGrad[1], wantGrad[1], 1e-14)
}
