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

// hostBalance recomputes, from the router weights [D, M] and the router inputs x [B, T, D] of one or
// more layers on the host, the load f (fraction of top-k assignments, per call) and FLA's loss
// M sum F P with F the fraction of tokens choosing m, all layers' rows pooled: an independent check of
// the layers' wiring.
func hostBalance(ws, xs [][]float64, tokens, dModel, memories, topK int) (loss float64, load []float64) {
	frac, meanProb := make([]float64, memories), make([]float64, memories)
	rows := float64(tokens * len(ws))
	for l := range ws {
		var callFrac []float64
		callFrac, load = hostRouterRows(ws[l], xs[l], tokens, dModel, memories, topK, meanProb, rows)
		for m := range frac {
			frac[m] += callFrac[m]
		}
	}
	for m := range frac {
		loss += float64(memories) * frac[m] * meanProb[m]
	}
	return loss, load
}

// hostRouterRows adds one call's share of F and P (rows pooled rows in all) and returns its F share
// and its own load.
func hostRouterRows(w, x []float64, tokens, dModel, memories, topK int, meanProb []float64, rows float64) (frac, load []float64) {
	frac, load = make([]float64, memories), make([]float64, memories)
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
			frac[best] += 1 / rows
		}
		for m := range logits {
			meanProb[m] += math.Exp(logits[m]) / z / rows
		}
	}
	return frac, load
}

// TestAuxLossInTrainingGraphs: a training graph carries aux_loss_weight * M sum F P as
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
	loss, load := hostBalance([][]float64{lt.Floats(wT)}, [][]float64{lt.Floats(x)}, c.Batch*7, testDModel, cfg.Memories, cfg.TopK)
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

// TestAuxLossPooledOverLayers: two MoM layers in one training graph (the second reads the first's
// output) give one regularization loss, aux_loss_weight * FLA's loss over both layers' router rows
// pooled (not the sum or mean of per-layer terms), equal to PooledBalanceLoss times the weight, with
// a finite gradient: checked against the host recomputation (the gradient of the telescoped terms is
// checked exactly in TestBalanceLossHandExample).
func TestAuxLossPooledOverLayers(t *testing.T) {
	cfg := smallConfig()
	cfg.AuxLossWeight = 0.5
	layer, err := mom.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	const time = 7
	c := lt.NewMixerCase(layer, 2, testDModel, 23)
	x := c.RandomInput(29, time)
	exec := model.MustNewExec(lt.Backend(), c.Store, func(scope *model.Scope, x *Node) []*Node {
		g := x.Graph()
		scope.Store().SetTraining(g, true)
		y0, _, s0 := layer.ApplyWithStats(scope.In("layer_0"), x, nil)
		y1, _, s1 := layer.ApplyWithStats(scope.In("layer_1"), y0, nil)
		reg, pooled := mltrain.GetRegularizationLoss(g), mom.PooledBalanceLoss(g)
		return []*Node{y0, y1, reg, pooled, Gradient(reg, x)[0], s0.BalanceLoss, s1.BalanceLoss}
	})
	defer exec.Finalize()
	out := exec.MustCall(x)
	var ws [][]float64
	for _, name := range []string{"/layer_0/r_proj/weight", "/layer_1/r_proj/weight"} {
		v, err := c.Store.GetVariable(name).Value()
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, lt.Floats(v))
	}
	loss, _ := hostBalance(ws, [][]float64{lt.Floats(x), lt.Floats(out[0])}, c.Batch*time, testDModel, cfg.Memories, cfg.TopK)
	if err := lt.RelRMS(lt.Floats(out[2]), []float64{cfg.AuxLossWeight * loss}); !(err <= 1e-12) {
		t.Errorf("regularization loss %v, want %g (relative error %.3g)", lt.Floats(out[2]), cfg.AuxLossWeight*loss, err)
	}
	if err := lt.RelRMS(lt.Floats(out[3]), []float64{loss}); !(err <= 1e-12) {
		t.Errorf("PooledBalanceLoss %v, want %g (relative error %.3g)", lt.Floats(out[3]), loss, err)
	}
	perLayer := (lt.Floats(out[5])[0] + lt.Floats(out[6])[0]) / 2
	t.Logf("pooled loss %.6f; the per-layer losses %.6f and %.6f (mean %.6f)", loss, lt.Floats(out[5])[0], lt.Floats(out[6])[0], perLayer)
	lt.AssertFinite(t, "gradient of the regularization loss", out[4])
}
