package mom_test

import (
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	mltrain "github.com/gomlx/gomlx/ml/train"
)

// runGraph applies the layer to x in a graph marked training (or not) and returns y and the graph's
// regularization loss (0 when none was added).
func runGraph(t *testing.T, c *lt.MixerCase, x *tensors.Tensor, training bool) (y, aux *tensors.Tensor) {
	t.Helper()
	exec := model.MustNewExec(lt.Backend(), c.Store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, training)
		y, _ := c.Mixer.Apply(scope.In("mixer"), x, nil)
		aux := mltrain.GetRegularizationLoss(g)
		if aux == nil {
			aux = ScalarZero(g, y.DType())
		}
		return []*Node{y, aux}
	})
	defer exec.Finalize()
	out := exec.MustCall(x)
	return out[0], out[1]
}

// hostBalance recomputes, from the router weight [D, M] and x [B, T, D] on the host, the load f and the
// loss M sum f P with top-k selection: an independent check of the layer's wiring.
func hostBalance(w, x []float64, tokens, dModel, memories, topK int) (loss float64, load []float64) {
	load, meanProb := make([]float64, memories), make([]float64, memories)
	for tok := 0; tok < tokens; tok++ {
		logits := make([]float64, memories)
		var z float64
		for m := range logits {
			for d := 0; d < dModel; d++ {
				logits[m] += x[tok*dModel+d] * w[d*memories+m]
			}
			z += math.Exp(logits[m])
		}
		taken := make([]bool, memories)
		for n := 0; n < topK; n++ {
			best := -1
			for m := range logits {
				if !taken[m] && (best < 0 || logits[m] > logits[best]) {
					best = m
				}
			}
			taken[best] = true
			load[best] += 1 / float64(topK*tokens)
		}
		for m := range logits {
			meanProb[m] += math.Exp(logits[m]) / z / float64(tokens)
		}
	}
	for m := range load {
		loss += float64(memories) * load[m] * meanProb[m]
	}
	return loss, load
}

// TestAuxLossInTrainingGraphs (issue 5, item 4): a training graph carries aux_loss_weight * M sum f P as
// GoMLX's regularization loss and stores the per-memory load in the layer's LoadVariable; an eval graph
// adds nothing; the output is the same either way.
func TestAuxLossInTrainingGraphs(t *testing.T) {
	cfg := smallConfig()
	cfg.AuxLossWeight = 0.25
	c := newCase(t, cfg, 17)
	x := c.RandomInput(19, 7)
	yEval, auxEval := runGraph(t, c, x, false)
	if got := lt.Floats(auxEval)[0]; got != 0 {
		t.Errorf("eval graph: regularization loss %g, want none", got)
	}
	if v := c.Store.GetVariable("/mixer/" + mom.LoadVariable); v != nil {
		t.Errorf("eval graph created %s", v.Path())
	}
	yTrain, auxTrain := runGraph(t, c, x, true)
	lt.AssertClose(t, "output (train vs eval graph)", yTrain, yEval, 0)

	router := c.Store.GetVariable("/mixer/r_proj/weight")
	wT, err := router.Value()
	if err != nil {
		t.Fatal(err)
	}
	loss, load := hostBalance(lt.Floats(wT), lt.Floats(x), c.Batch*7, testDModel, cfg.Memories, cfg.TopK)
	if err := lt.RelRMS(lt.Floats(auxTrain), []float64{cfg.AuxLossWeight * loss}); !(err <= 1e-12) {
		t.Errorf("training graph: regularization loss %v, want %g (relative error %.3g)", lt.Floats(auxTrain), cfg.AuxLossWeight*loss, err)
	}
	loadT, err := c.Store.GetVariable("/mixer/" + mom.LoadVariable).Value()
	if err != nil {
		t.Fatal(err)
	}
	if err := lt.RelRMS(lt.Floats(loadT), load); !(err <= 1e-12) {
		t.Errorf("%s = %v, want %v", mom.LoadVariable, lt.Floats(loadT), load)
	}
	t.Logf("aux loss %.6f (weight %g), load %v", lt.Floats(auxTrain)[0], cfg.AuxLossWeight, lt.Floats(loadT))
}
