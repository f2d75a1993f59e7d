package mom

import (
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	mltrain "github.com/gomlx/gomlx/ml/train"
)

// TestBalanceLossHandExample: flash-linear-attention's load_balancing_loss_func worked by hand on
// 2 layers x 3 tokens, M = 4 memories, top-2, logits = log p (so softmax gives p back):
//
//	layer 0: p = [.40 .30 .20 .10] -> {0, 1}   [.10 .20 .30 .40] -> {3, 2}   [.25 .35 .30 .10] -> {1, 2}
//	layer 1: p = [.50 .25 .15 .10] -> {0, 1}   [.05 .60 .15 .20] -> {1, 3}   [.30 .10 .20 .40] -> {3, 0}
//
// Pooled over the 6 rows: memory 0 is chosen 3 times, 1: 4, 2: 2, 3: 3 (12 = 6 * k), so
// F = [3 4 2 3] / 6 (sums to k = 2); column sums of p are [1.6 1.8 1.3 1.3], P = [1.6 1.8 1.3 1.3] / 6;
// loss = 4 (3*1.6 + 4*1.8 + 2*1.3 + 3*1.3) / 36 = 4 * 18.5 / 36 = 37/18 = 2.0555...
// Not the mean of the per-layer losses: layer 0 alone gives 4 * 4.65 / 9 = 2.0667, layer 1
// 4 * 5 / 9 = 2.2222 (mean 2.1444); and not divided by k (that would be 1.0278).
// The gradient is d loss / d logit_qj = (M / 6) p_qj (F_j - sum_e F_e p_qe).
//
// The pooled loss is computed twice: BalanceLoss over the concatenated rows, and the graph-scoped
// pool the layers use (two calls of poolRouter in a training graph), whose telescoped regularization
// terms must add up to weight * 37/18.
func TestBalanceLossHandExample(t *testing.T) {
	probs := [][]float64{
		{.40, .30, .20, .10}, {.10, .20, .30, .40}, {.25, .35, .30, .10},
		{.50, .25, .15, .10}, {.05, .60, .15, .20}, {.30, .10, .20, .40},
	}
	var logits []float64
	for _, row := range probs {
		for _, p := range row {
			logits = append(logits, math.Log(p))
		}
	}
	const weight = 0.5
	store := model.NewStore()
	exec := model.MustNewExec(lt.Backend(), store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		store.SetTraining(g, true)
		p, chosen, _ := TopKRouting(x, 2) // x: [2 layers, 3 tokens, 4]
		loss, frac, meanProb := BalanceLoss(p, chosen, nil)
		for l := 0; l < 2; l++ {
			layer := func(y *Node) *Node { return Reshape(SliceAxis(y, 0, AxisElem(l)), 1, 3, 4) }
			addPooledBalanceLoss(layer(p), layer(chosen), weight, x.DType())
		}
		pooled := PooledBalanceLoss(g)
		reg := mltrain.GetRegularizationLoss(g)
		return []*Node{loss, frac, meanProb, chosen, Gradient(loss, x)[0], pooled, reg, Gradient(reg, x)[0]}
	})
	defer exec.Finalize()
	out := exec.MustCall(tensors.FromFlatDataAndDimensions(logits, 2, 3, 4))

	frac := []float64{3. / 6, 4. / 6, 2. / 6, 3. / 6}
	var grad []float64
	for _, row := range probs {
		var mean float64
		for e, p := range row {
			mean += frac[e] * p
		}
		for j, p := range row {
			grad = append(grad, 4./6*p*(frac[j]-mean))
		}
	}
	scaled := make([]float64, len(grad))
	for i, g := range grad {
		scaled[i] = weight * g
	}
	want := []struct {
		name string
		x    []float64
	}{
		{"loss", []float64{37. / 18}},
		{"F", frac},
		{"P", []float64{1.6 / 6, 1.8 / 6, 1.3 / 6, 1.3 / 6}},
		{"chosen", []float64{1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1}},
		{"d loss / d logits", grad},
		{"PooledBalanceLoss", []float64{37. / 18}},
		{"regularization loss", []float64{weight * 37. / 18}},
		{"d regularization / d logits", scaled},
	}
	for i, w := range want {
		if err := lt.RelRMS(lt.Floats(out[i]), w.x); !(err <= 1e-14) {
			t.Errorf("%s = %v, want %v (relative RMS error %.3g)", w.name, lt.Floats(out[i]), w.x, err)
		}
	}
	t.Logf("pooled loss %.15g (37/18 = %.15g), regularization %.15g", lt.Floats(out[0])[0], 37./18, lt.Floats(out[6])[0])
}
