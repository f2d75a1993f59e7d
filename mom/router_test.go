package mom_test

import (
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestTopKRoutingGradient: the routing weights are a softmax over the chosen logits, so for
// L = <weight, c> the gradient with respect to logit m is w_m (c_m - <w, c>) on the chosen memories and 0
// elsewhere. This checks TopKMask's selection and the gradient that flows through it on the Go backend.
func TestTopKRoutingGradient(t *testing.T) {
	const tokens, memories, topK = 5, 4, 2
	logitsT := lt.RandNormal(lt.NewRand(13), 1, tokens, memories)
	c := lt.RandNormal(lt.NewRand(17), 1, tokens, memories)
	out := lt.RunOp(func(in []*Node) []*Node {
		_, chosen, weight := mom.TopKRouting(in[0], topK)
		return []*Node{chosen, weight, Gradient(ReduceAllSum(Mul(weight, in[1])), in[0])[0]}
	}, []*tensors.Tensor{logitsT, c})
	logits, cs := lt.Floats(logitsT), lt.Floats(c)
	var wantChosen, wantWeight, wantGrad []float64
	for tok := 0; tok < tokens; tok++ {
		row := logits[tok*memories : (tok+1)*memories]
		chosen := make([]bool, memories)
		for n := 0; n < topK; n++ { // pick the largest not yet chosen
			best := -1
			for m := range row {
				if !chosen[m] && (best < 0 || row[m] > row[best]) {
					best = m
				}
			}
			chosen[best] = true
		}
		var z, mean float64
		for m := range row {
			if chosen[m] {
				z += math.Exp(row[m])
			}
		}
		w := make([]float64, memories)
		for m := range row {
			if chosen[m] {
				w[m] = math.Exp(row[m]) / z
				mean += w[m] * cs[tok*memories+m]
			}
		}
		for m := range row {
			wantChosen = append(wantChosen, map[bool]float64{true: 1, false: 0}[chosen[m]])
			wantWeight = append(wantWeight, w[m])
			wantGrad = append(wantGrad, w[m]*(cs[tok*memories+m]-mean))
		}
	}
	for i, want := range [][]float64{wantChosen, wantWeight, wantGrad} {
		name := []string{"chosen", "weight", "gradient"}[i]
		if err := lt.RelRMS(lt.Floats(out[i]), want); !(err <= 1e-12) {
			t.Errorf("%s = %v, want %v (relative RMS error %.3g)", name, lt.Floats(out[i]), want, err)
		}
	}
}

// TestTopKRoutingTies: among equal probabilities the lower memory indices are chosen, and exactly topK
// memories are chosen per token (rows of 4 and 8 memories, topK 1 to 3).
func TestTopKRoutingTies(t *testing.T) {
	for _, c := range []struct {
		logits []float64
		topK   int
		want   []float64
	}{
		{[]float64{1, 2, 2, 2}, 2, []float64{0, 1, 1, 0}},
		{[]float64{3, 3, 3, 3}, 2, []float64{1, 1, 0, 0}},
		{[]float64{0, 5, 0, 5}, 1, []float64{0, 1, 0, 0}},
		{[]float64{1, 0, 1, 0, 2, 0, 1, 0}, 3, []float64{1, 0, 1, 0, 1, 0, 0, 0}},
		{[]float64{-1, 4, 2, 3, 0, 4, 4, 1}, 3, []float64{0, 1, 0, 0, 0, 1, 1, 0}},
	} {
		logits := tensors.FromFlatDataAndDimensions(c.logits, 1, len(c.logits))
		out := lt.RunOp(func(in []*Node) []*Node {
			_, chosen, _ := mom.TopKRouting(in[0], c.topK)
			return []*Node{chosen}
		}, []*tensors.Tensor{logits})
		if got := lt.Floats(out[0]); lt.RelRMS(got, c.want) != 0 {
			t.Errorf("logits %v, top-%d: chosen %v, want %v", c.logits, c.topK, got, c.want)
		}
	}
}
