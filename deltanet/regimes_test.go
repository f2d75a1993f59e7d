package deltanet_test

import (
	"math"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestGateRegimesFloat32: Over T = 1024 in float32 the chunk form's outputs, final
// state and every gradient stay finite in each gate regime, and stay close to the same computation in
// float64 (so "finite" is not "finite but wrong").
func TestGateRegimesFloat32(t *testing.T) {
	shape := opShape{batch: 1, time: 1024, heads: 2, dk: 16, dv: 16}
	regimes := []struct {
		name           string
		betaLo, betaHi float64
		gLo, gHi       float64
	}{
		{"g near 0 (alpha near 1)", 0, 1, -1e-4, 0},
		{"strongly negative g", 0, 1, -20, -5},
		{"beta near 0", 0, 1e-3, -0.5, 0},
		{"beta near 1", 0.999, 1, -0.5, 0},
		{"beta in (0, 2)", 0, 2, -0.5, 0},
		{"beta near 2, g near 0", 1.99, 2, -1e-4, 0},
	}
	scale := 1 / math.Sqrt(float64(shape.dk))
	fn := chunkFn(scale, 64, deltanet.GatedDeltaRule)
	for i, r := range regimes {
		t.Run(r.name, func(t *testing.T) {
			inputs := opInputs(uint64(100+i), shape, r.betaLo, r.betaHi, r.gLo, r.gHi)
			inputs32 := make([]*tensors.Tensor, len(inputs))
			for j, x := range inputs {
				inputs32[j] = as32(x)
			}
			upstream := lt.RandomUpstream(7, lt.RunOp(fn, inputs))
			wantOut, wantGrad := lt.OpGradients(fn, inputs, upstream)
			gotOut, gotGrad := lt.OpGradients(fn, inputs32, upstream)
			var worst float64
			for j, x := range append(gotOut, gotGrad...) {
				name := append(opOutNames, opInNames...)[j]
				lt.AssertFinite(t, "float32 "+name, x)
				want := append(wantOut, wantGrad...)[j]
				worst = math.Max(worst, lt.RelRMS(lt.Floats(x), lt.Floats(want)))
			}
			// Gradients sum over 1024 steps of products, so float32 rounding grows; 8e-3 is the
			// reference's own gradient tolerance.
			if !(worst <= 8e-3) {
				t.Errorf("float32 vs float64: worst relative RMS %.2g > 8e-3", worst)
			}
			t.Logf("%-24s float32 vs float64 worst relative RMS over o, ht and 6 gradients: %.1e", r.name, worst)
		})
	}
}
