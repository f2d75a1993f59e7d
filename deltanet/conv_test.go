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
			y, next := shortConvWithWeight(in[0], in[1], cacheOf(in))
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
