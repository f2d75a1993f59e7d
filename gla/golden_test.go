package gla_test

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// goldenDir holds flash-linear-attention's naive_recurrent_gla run in float64 (copied from the shared
// golden set; its README gives the layouts, the fixed scale K^-1/2 and the tolerances).
const goldenDir = "testdata/gla_op"

type goldenCase struct {
	Name  string  `json:"name"`
	T     int     `json:"T"`
	Scale float64 `json:"scale"`
}

func loadGolden(t *testing.T) []goldenCase { return lt.GoldenCases[goldenCase](t, goldenDir, 3) }

func readNpy(t *testing.T, dir, name string) *tensors.Tensor {
	t.Helper()
	return lt.GoldenArray(t, goldenDir, dir, name)
}

// to64 copies a float tensor into float64, so float32 results compare against float64 references.
var to64 = lt.Float64

func to32(x *tensors.Tensor) *tensors.Tensor {
	f := lt.Floats(x)
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(out, x.Shape().Dimensions...)
}

var goldenNames = []string{"o", "ht", "dq", "dk", "dv", "dgk", "dh0"}

// TestGolden: the naive and chunked ops against fla's reference on every case, in float64 (tolerance
// 1e-10) and float32 (1e-4 for o and ht, 1e-3 for the gradients of sum(o*do) + sum(ht*dht)). Case
// b_t75_mixed has per-step decays down to 0.0096, so a chunk of 64 spans log-decays near -300: the float32
// stress test of the chunked form.
func TestGolden(t *testing.T) {
	for _, c := range loadGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			var inputs, want []*tensors.Tensor
			for _, name := range opInNames {
				inputs = append(inputs, readNpy(t, c.Name, name))
			}
			for _, name := range goldenNames {
				want = append(want, readNpy(t, c.Name, name))
			}
			upstream := []*tensors.Tensor{readNpy(t, c.Name, "do"), readNpy(t, c.Name, "dht")}
			var inputs32, upstream32 []*tensors.Tensor
			for _, x := range inputs {
				inputs32 = append(inputs32, to32(x))
			}
			for _, x := range upstream {
				upstream32 = append(upstream32, to32(x))
			}
			runs := []struct {
				name         string
				fn           lt.OpFn
				in, up       []*tensors.Tensor
				outTol, gTol float64
			}{
				{"naive f64", naiveFn(c.Scale), inputs, upstream, 1e-10, 1e-10},
				{"chunk64 f64", chunkFn(c.Scale, 64), inputs, upstream, 1e-10, 1e-10},
				{"chunk16 f64", chunkFn(c.Scale, 16), inputs, upstream, 1e-10, 1e-10},
				{"naive f32", naiveFn(c.Scale), inputs32, upstream32, 1e-4, 1e-3},
				{"chunk64 f32", chunkFn(c.Scale, 64), inputs32, upstream32, 1e-4, 1e-3},
				{"chunk16 f32", chunkFn(c.Scale, 16), inputs32, upstream32, 1e-4, 1e-3},
			}
			for _, run := range runs {
				outs, grads := lt.OpGradients(run.fn, run.in, run.up)
				if run.in[0].DType() == dtypes.Float32 && outs[0].DType() != dtypes.Float32 {
					t.Fatalf("%s: ran in %s, want float32", run.name, outs[0].DType())
				}
				got := append(outs, grads...)
				var errs []float64
				worst := 0.0
				for i := range want {
					tol := run.gTol
					if i < 2 {
						tol = run.outTol
					}
					lt.AssertFinite(t, run.name+" "+goldenNames[i], got[i])
					e := lt.AssertClose(t, run.name+" "+goldenNames[i], to64(got[i]), want[i], tol)
					errs = append(errs, e)
					worst = max(worst, e)
				}
				t.Logf("%-11s worst %.1e | o %.1e ht %.1e dq %.1e dk %.1e dv %.1e dgk %.1e dh0 %.1e",
					run.name, worst, errs[0], errs[1], errs[2], errs[3], errs[4], errs[5], errs[6])
			}
		})
	}
}
