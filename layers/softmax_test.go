package layers_test

import (
	"math"
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

// TestExpOfMaskedDecays: the backend's float32 Exp over the decay factors Titans' chunked forms take
// (exp of log-gate sums in [-40, 0]) is within 3e-7 absolute of math.Exp, and the -1e30 those forms
// write into masked pairs gives exactly 0 (not NaN).
func TestExpOfMaskedDecays(t *testing.T) {
	var in []float32
	for v := float32(-40); v <= 0; v += 0.01 {
		in = append(in, v)
	}
	in = append(in, -1e30)
	out := lt.RunOp(func(n []*Node) []*Node { return []*Node{Exp(n[0])} },
		[]*tensors.Tensor{tensors.FromValue(in)})
	got := out[0].Value().([]float32)
	worst := 0.0
	for i, v := range in {
		worst = math.Max(worst, math.Abs(float64(got[i])-math.Exp(float64(v))))
	}
	t.Logf("Exp float32: worst absolute error %.3g over [-40, 0]", worst)
	if worst > 3e-7 || got[len(got)-1] != 0 {
		t.Errorf("Exp float32: absolute error %.3g > 3e-7, or exp(-1e30) = %g, not 0", worst, got[len(got)-1])
	}
}
