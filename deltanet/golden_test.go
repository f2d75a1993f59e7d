package deltanet_test

import (
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/gomlx/core/tensors"
)

// goldenDir holds the vectors made by flash-linear-attention's float64 PyTorch reference (see its
// README); tests run in the package directory, two levels below the workspace.
const goldenDir = "testdata/gated_delta_rule" // copied from the shared golden set; see its README

type goldenCase struct {
	Name  string  `json:"name"`
	T     int     `json:"T"`
	Scale float64 `json:"scale"`
}

func loadGolden(t *testing.T) []goldenCase { return lt.GoldenCases[goldenCase](t, goldenDir, 0) }

func readNpy(t *testing.T, dir, name string) *tensors.Tensor {
	t.Helper()
	return lt.GoldenArray(t, goldenDir, dir, name)
}

// to64 copies a float tensor into float64, so float32 results compare against float64 references.
var to64 = lt.Float64

// TestGolden: The naive and chunked ops against the PyTorch reference, in float64
// (expect ~1e-12) and in float32 within the reference's own tolerances: 2e-3 for o and ht, 8e-3 for
// the gradients of sum(o*do) + sum(ht*dht).
func TestGolden(t *testing.T) {
	for _, c := range loadGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			var inputs, want []*tensors.Tensor
			for _, name := range opInNames {
				inputs = append(inputs, readNpy(t, c.Name, name))
			}
			for _, name := range []string{"o", "ht", "dq", "dk", "dv", "dbeta", "dg", "dh0"} {
				want = append(want, readNpy(t, c.Name, name))
			}
			upstream := []*tensors.Tensor{readNpy(t, c.Name, "do"), readNpy(t, c.Name, "dht")}
			inputs32 := make([]*tensors.Tensor, len(inputs))
			for i, x := range inputs {
				inputs32[i] = as32(x)
			}
			runs := []struct {
				name         string
				fn           lt.OpFn
				in           []*tensors.Tensor
				outTol, gTol float64
			}{
				{"naive f64", naiveFn(c.Scale, deltanet.GatedDeltaRule), inputs, 1e-10, 1e-10},
				{"chunk64 f64", chunkFn(c.Scale, 64, deltanet.GatedDeltaRule), inputs, 1e-10, 1e-10},
				{"chunk16 f64", chunkFn(c.Scale, 16, deltanet.GatedDeltaRule), inputs, 1e-10, 1e-10},
				{"naive f32", naiveFn(c.Scale, deltanet.GatedDeltaRule), inputs32, 2e-3, 8e-3},
				{"chunk64 f32", chunkFn(c.Scale, 64, deltanet.GatedDeltaRule), inputs32, 2e-3, 8e-3},
			}
			for _, run := range runs {
				outs, grads := lt.OpGradients(run.fn, run.in, upstream)
				got := append(outs, grads...)
				var errs []float64
				for i := range want {
					tol := run.gTol
					if i < 2 {
						tol = run.outTol
					}
					errs = append(errs, lt.AssertClose(t, run.name+" "+goldenNames[i], to64(got[i]), want[i], tol))
				}
				t.Logf("%-12s rel RMS o %.1e ht %.1e | dq %.1e dk %.1e dv %.1e dbeta %.1e dg %.1e dh0 %.1e",
					run.name, errs[0], errs[1], errs[2], errs[3], errs[4], errs[5], errs[6], errs[7])
			}
		})
	}
}

var goldenNames = []string{"o", "ht", "dq", "dk", "dv", "dbeta", "dg", "dh0"}
