package layers_test

import (
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// SoftmaxLast has GoMLX Softmax's value and gradient (float64, random upstream gradients), masked
// scores included.
func TestSoftmaxLastMatchesSoftmax(t *testing.T) {
	x := lt.RandNormal(lt.NewRand(5), 3, 2, 3, 7)
	flat := lt.Floats(x)
	for i := 0; i < len(flat); i += 5 {
		flat[i] = -1e9 // a masked score
	}
	x = tensors.FromFlatDataAndDimensions(flat, 2, 3, 7)
	lt.FastVsReference(t,
		func(in []*Node) []*Node { return []*Node{layers.SoftmaxLast(in[0])} },
		func(in []*Node) []*Node { return []*Node{Softmax(in[0], -1)} },
		[]*tensors.Tensor{x}, []string{"softmax"}, []string{"x"}, 1e-12)
}
