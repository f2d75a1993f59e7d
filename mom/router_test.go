package mom_test

import (
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestBalanceLossHandExample (issue 5, item 4): 4 tokens (B = 2, T = 2), M = 3, k = 2, with the
// selection made by TopKRouting on the Go backend from log-probabilities.
//
//	p = [.5 .3 .2] -> {0, 1};  [.6 .1 .3] -> {0, 2};  [.2 .5 .3] -> {1, 2};  [.7 .2 .1] -> {0, 1}
//	f = [3, 3, 2] / 8;  P = [2.0, 1.1, 0.9] / 4 = [.5, .275, .225]
//	loss = 3 (.375 * .5 + .375 * .275 + .25 * .225) = 3 * .346875 = 1.040625
//	d loss / d p_tm = M f_m / N = [.28125, .28125, .1875] for every token
func TestBalanceLossHandExample(t *testing.T) {
	probs := [][]float64{{.5, .3, .2}, {.6, .1, .3}, {.2, .5, .3}, {.7, .2, .1}}
	var logits []float64
	for _, row := range probs {
		for _, p := range row {
			logits = append(logits, math.Log(p))
		}
	}
	out := lt.RunOp(func(in []*Node) []*Node {
		p, chosen, _ := mom.TopKRouting(in[0], 2)
		loss, load, meanProb := mom.BalanceLoss(p, chosen, 2)
		grad := Gradient(loss, p)[0]
		return []*Node{loss, load, meanProb, chosen, grad}
	}, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(logits, 2, 2, 3)})
	want := map[string][]float64{
		"loss":     {1.040625},
		"load":     {.375, .375, .25},
		"meanProb": {.5, .275, .225},
		"chosen":   {1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0},
		"d loss / d p": {.28125, .28125, .1875, .28125, .28125, .1875,
			.28125, .28125, .1875, .28125, .28125, .1875},
	}
	for i, name := range []string{"loss", "load", "meanProb", "chosen", "d loss / d p"} {
		if err := lt.RelRMS(lt.Floats(out[i]), want[name]); !(err <= 1e-14) {
			t.Errorf("%s = %v, want %v (relative RMS error %.3g)", name, lt.Floats(out[i]), want[name], err)
		}
	}
}

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
