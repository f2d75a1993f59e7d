package deltanet

import (
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestShortConvEqualsLayers: shortConv (rows gathered, gradient by pad) computes layers.ShortConvWithWeight's
// outputs, next cache and gradients, with and without an incoming cache.
func TestShortConvEqualsLayers(t *testing.T) {
	const batch, time, channels, kernel = 2, 7, 3, 4
	rng := lt.NewRand(11)
	x := lt.RandNormal(rng, 1, batch, time, channels)
	w := lt.RandNormal(rng, 1, kernel, channels)
	cache := lt.RandNormal(rng, 1, batch, kernel-1, channels)
	for _, withCache := range []bool{false, true} {
		inputs := []*tensors.Tensor{x, w}
		if withCache {
			inputs = append(inputs, cache)
		}
		cacheOf := func(in []*Node) *Node {
			if withCache {
				return in[2]
			}
			return nil
		}
		ref := func(in []*Node) []*Node {
			y, next := layers.ShortConvWithWeight(in[0], in[1], cacheOf(in), batch, time, channels)
			return []*Node{y, next}
		}
		got := func(in []*Node) []*Node {
			y, next := shortConvWithWeight(in[0], in[1], cacheOf(in), nil)
			return []*Node{y, next}
		}
		upstream := lt.RandomUpstream(3, lt.RunOp(ref, inputs))
		wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
		gotOut, gotGrad := lt.OpGradients(got, inputs, upstream)
		for i := range wantOut {
			lt.AssertClose(t, "output", gotOut[i], wantOut[i], 1e-14)
		}
		for i := range wantGrad {
			lt.AssertClose(t, "gradient", gotGrad[i], wantGrad[i], 1e-14)
		}
	}
}

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
