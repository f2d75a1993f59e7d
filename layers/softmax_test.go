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

// FastSigmoid and ExpNonPositive (tanh identities) have the values and gradients of Logistic and Exp in
// float64 (relative), and ExpNonPositive's float32 error is absolute, within a few ulps of 1, over
// [-40, 0] including the -1e30 a mask writes.
func TestTanhIdentities(t *testing.T) {
	x := lt.RandUniform(lt.NewRand(6), -12, 0, 4, 9)
	lt.FastVsReference(t,
		func(in []*Node) []*Node { return []*Node{layers.FastSigmoid(in[0]), layers.ExpNonPositive(in[0])} },
		func(in []*Node) []*Node { return []*Node{Sigmoid(in[0]), Exp(in[0])} },
		[]*tensors.Tensor{x}, []string{"sigmoid", "exp"}, []string{"x"}, 1e-10)

	var in []float32
	for v := float32(-40); v <= 0; v += 0.01 {
		in = append(in, v)
	}
	in = append(in, -1e30)
	out := lt.RunOp(func(n []*Node) []*Node { return []*Node{layers.ExpNonPositive(n[0])} },
		[]*tensors.Tensor{tensors.FromValue(in)})
	got := out[0].Value().([]float32)
	worst := 0.0
	for i, v := range in {
		worst = math.Max(worst, math.Abs(float64(got[i])-math.Exp(float64(v))))
	}
	t.Logf("ExpNonPositive float32: worst absolute error %.3g over [-40, 0]", worst)
	if worst > 3e-7 {
		t.Errorf("ExpNonPositive float32: absolute error %.3g > 3e-7", worst)
	}
}
