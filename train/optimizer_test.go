package train

import (
	"github.com/engramlx/engram/model"
	"reflect"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// One AdamW step by hand: at step 1 the debiased moments are g and g^2, so the step is
// lr * (g / (|g| + eps) + wd * w) for matrices and lr * g / (|g| + eps) for vectors and for A_log
// (never decayed).
func TestAdamWFirstStepByHand(t *testing.T) {
	store := mlmodel.NewStore()
	w0 := []float64{1, -2, 3, 0.5}
	b0 := []float64{0.25, -0.5}
	aLog0 := []float64{2, 3}
	o := &AdamW{LearningRate: 0.1, WarmupSteps: 0, TotalSteps: 10, MinLRRatio: 1, Beta1: 0.9, Beta2: 0.99, Epsilon: 1e-8, WeightDecay: 0.5,
		NoDecay: map[string]bool{"A_log": true}}
	exec := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, g *Graph) *Node {
		w := scope.VariableWithValue("weight", [][]float64{{w0[0], w0[1]}, {w0[2], w0[3]}}).NodeValue(g)
		b := scope.VariableWithValue("bias", b0).NodeValue(g)
		a := scope.VariableWithValue("A_log", [][]float64{{aLog0[0]}, {aLog0[1]}}).NodeValue(g)
		// loss gradients: dw = [[1,-3],[2,4]], db = [-1, 5], dA_log = [[2],[-2]]
		loss := Add(Add(ReduceAllSum(Mul(w, Const(g, [][]float64{{1, -3}, {2, 4}}))),
			ReduceAllSum(Mul(b, Const(g, []float64{-1, 5})))), ReduceAllSum(Mul(a, Const(g, [][]float64{{2}, {-2}}))))
		o.UpdateGraph(scope, g, loss)
		return loss
	})
	exec.MustCall()
	sign := func(g float64) float64 { return g / (abs(g) + 1e-8) }
	wantW := []float64{
		w0[0] - 0.1*(sign(1)+0.5*w0[0]), w0[1] - 0.1*(sign(-3)+0.5*w0[1]),
		w0[2] - 0.1*(sign(2)+0.5*w0[2]), w0[3] - 0.1*(sign(4)+0.5*w0[3]),
	}
	wantB := []float64{b0[0] - 0.1*sign(-1), b0[1] - 0.1*sign(5)}
	wantA := []float64{aLog0[0] - 0.1*sign(2), aLog0[1] - 0.1*sign(-2)}
	check := func(path string, want []float64, dims ...int) {
		v := store.GetVariable(path)
		lt.AssertClose(t, path, v.MustValue(), tensors.FromFlatDataAndDimensions(want, dims...), 1e-12)
	}
	check("/weight", wantW, 2, 2)
	check("/bias", wantB, 2)
	check("/A_log", wantA, 2, 1)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// The trainer's AdamW exempts what the model's mixers declare (layers.DecayExempt): a gated DeltaNet
// model's A_log and dt_bias, nothing for an attention model.
func TestNoDecayComesFromTheMixers(t *testing.T) {
	for _, c := range []struct {
		layer string
		want  map[string]bool
	}{{"gated_deltanet", map[string]bool{"A_log": true, "dt_bias": true}}, {"attention", map[string]bool{}}} {
		exp := tinyExperiment(t, t.TempDir())
		exp.Model.Layers = model.LayerTypes(c.layer)
		r, err := NewRunner(exp, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Model.NoWeightDecay(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: NoWeightDecay %v, want %v", c.layer, got, c.want)
		}
	}
}
