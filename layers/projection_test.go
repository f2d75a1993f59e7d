package layers_test

import (
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestProjectionEqualsDense: ProjectWith (the weight gradient from the shared FeaturesFirst input)
// computes Dense's product x w and autodiff's gradients with respect to x and the weight (float64).
func TestProjectionEqualsDense(t *testing.T) {
	rng := lt.NewRand(12)
	inputs := []*tensors.Tensor{lt.RandNormal(rng, 1, 2, 5, 3), lt.RandNormal(rng, 1, 3, 4)}
	ref := func(in []*Node) []*Node {
		return []*Node{DotGeneral(in[0], []int{2}, nil, in[1], []int{0}, nil)} // Dense's product
	}
	got := func(in []*Node) []*Node {
		xs := layers.Share(in[0])
		return []*Node{layers.ProjectWith(xs, layers.FeaturesFirst(xs.Node()), in[1])}
	}
	upstream := lt.RandomUpstream(3, lt.RunOp(ref, inputs))
	wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
	gotOut, gotGrad := lt.OpGradients(got, inputs, upstream)
	lt.AssertClose(t, "output", gotOut[0], wantOut[0], 1e-14)
	lt.AssertClose(t, "gradient of x", gotGrad[0], wantGrad[0], 1e-14)
	lt.AssertClose(t, "gradient of w", gotGrad[1], wantGrad[1], 1e-14)
}
