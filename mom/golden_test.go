package mom_test

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// balanceGoldenDir holds flash-linear-attention's load_balancing_loss_func vectors (see its README).
const balanceGoldenDir = "testdata/mom_balance_loss"

type balanceCase struct {
	Name      string `json:"name"`
	Layers    int    `json:"num_layers"`
	Batch     int    `json:"batch_size"`
	SeqLen    int    `json:"seq_len"`
	Memories  int    `json:"num_memories"`
	TopK      int    `json:"top_k"`
	MaskInput any    `json:"attention_mask"` // null, or the [B, T] mask also stored as attention_mask.npy
}

func readBalanceNpy(t *testing.T, dir, name string) *tensors.Tensor {
	t.Helper()
	return lt.GoldenArray(t, balanceGoldenDir, dir, name)
}

// TestBalanceLossGolden: BalanceLoss over the pooled rows of both layers (router logits [L, N, M]
// through TopKRouting, the attention mask as row weights broadcast over the layers) against
// flash-linear-attention's load_balancing_loss_func: loss, its gradient with respect to the logits,
// F, P and the selected memories; in float64 (1e-12) and float32 (1e-5 loss, 1e-4 gradient).
func TestBalanceLossGolden(t *testing.T) {
	cases := lt.GoldenCases[balanceCase](t, balanceGoldenDir, 3)
	for _, c := range cases {
		for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			t.Run(c.Name+"/"+dtype.String(), func(t *testing.T) {
				logits := readBalanceNpy(t, c.Name, "router_logits")
				rows := c.Batch * c.SeqLen
				inputs := []*tensors.Tensor{logits}
				masked := c.MaskInput != nil
				if masked {
					inputs = append(inputs, readBalanceNpy(t, c.Name, "attention_mask"))
				}
				out := lt.RunOp(func(in []*Node) []*Node {
					x := ConvertDType(in[0], dtype)
					p, chosen, _ := mom.TopKRouting(x, c.TopK)
					var w *Node
					if masked { // [B, T] -> [L, B*T]: the same mask for every layer
						w = BroadcastToDims(Reshape(in[1], 1, rows), c.Layers, rows)
					}
					loss, frac, meanProb := mom.BalanceLoss(p, chosen, w)
					grad := Gradient(loss, x)[0]
					f64 := func(n *Node) *Node { return ConvertDType(n, dtypes.Float64) }
					return []*Node{f64(loss), f64(grad), f64(frac), f64(meanProb), f64(chosen)}
				}, inputs)
				tolLoss, tolGrad := 1e-12, 1e-12
				if dtype == dtypes.Float32 {
					tolLoss, tolGrad = 1e-5, 1e-4
				}
				want := []struct {
					name string
					file string
					tol  float64
				}{
					{"loss", "loss", tolLoss},
					{"gradient", "grad_router_logits", tolGrad},
					{"F (tokens_frac_per_expert)", "tokens_frac_per_expert", tolLoss},
					{"P (router_prob_per_expert)", "router_prob_per_expert", tolLoss},
				}
				for i, w := range want {
					got, ref := lt.Floats(out[i]), lt.Floats(readBalanceNpy(t, c.Name, w.file))
					if err := lt.RelRMS(got, ref); !(err <= w.tol) {
						t.Errorf("%s: relative RMS error %.3g > %g (got %v, want %v)", w.name, err, w.tol, got, ref)
					} else if i < 2 {
						t.Logf("%s: relative RMS error %.2g", w.name, err)
					}
				}
				// selected_experts [L, N, k] (indices) as the one-hot chosen [L, N, M].
				sel := lt.Floats(readBalanceNpy(t, c.Name, "selected_experts"))
				oneHot := make([]float64, c.Layers*rows*c.Memories)
				for q := 0; q < c.Layers*rows; q++ {
					for s := 0; s < c.TopK; s++ {
						oneHot[q*c.Memories+int(sel[q*c.TopK+s])] = 1
					}
				}
				if err := lt.RelRMS(lt.Floats(out[4]), oneHot); err != 0 {
					t.Errorf("selected memories differ from FLA's topk")
				}
			})
		}
	}
}
