package train

import (
	"math"
	"path"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter, 2019), a linear warm-up then cosine
// learning-rate schedule, and gradient clipping by global norm.
//
// It is ours rather than GoMLX's Adam because GoMLX decays every variable and has no global-norm
// clipping: here weight decay applies only to matrices (rank >= 2) and never to the variables named
// in NoDecay (the names the model's mixers exempt: the gated delta rule's A_log and dt_bias), nor to
// norm weights and biases.
//
// Per step s (1-based), for each trainable w with gradient g (after clipping):
//
//	m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//	w <- w - lr_s (m/(1-b1^s)) / (sqrt(v/(1-b2^s)) + eps) - lr_s wd w
type AdamW struct {
	LearningRate float64
	WarmupSteps  int
	TotalSteps   int
	MinLRRatio   float64
	Beta1, Beta2 float64
	Epsilon      float64
	WeightDecay  float64
	ClipNorm     float64 // 0: no clipping
	// NoDecay names variables (last path element) never decayed, whatever their rank
	// (model.NoWeightDecay collects them from the mixers).
	NoDecay map[string]bool
}

// statsScope holds the per-step values the runner logs (learning rate, gradient norm).
const statsScope = "/train_stats"

// UpdateGraph implements optimizer.Interface.
func (o *AdamW) UpdateGraph(scope *mlmodel.Scope, g *Graph, loss *Node) {
	o.UpdateGraphWithGradients(scope, scope.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}

// Clear implements optimizer.Interface: it deletes the moments and statistics.
func (o *AdamW) Clear(scope *mlmodel.Scope) error {
	if err := scope.Store().DeleteVariablesInScope("/adamw"); err != nil {
		return err
	}
	return scope.Store().DeleteVariablesInScope(statsScope)
}

// UpdateGraphWithGradients implements GoMLX's train.OptimizeWithGradients (used for accumulation).
// grads are in the order of the trainable variables used by the graph.
func (o *AdamW) UpdateGraphWithGradients(scope *mlmodel.Scope, grads []*Node, lossDType dtypes.DType) {
	g := grads[0].Graph()
	dtype := dtypes.Float32
	if lossDType == dtypes.Float64 {
		dtype = dtypes.Float64
	}
	step := optimizer.IncrementGlobalStep(g, dtype)
	lr := o.Schedule(step)
	grads, norm := ClipByGlobalNorm(grads, o.ClipNorm)
	store := scope.Store()
	stats := store.Scope(statsScope)
	stats.VariableWithValue("learning_rate", 0.0).SetTrainable(false).SetNodeValue(ConvertDType(lr, dtypes.Float64))
	stats.VariableWithValue("grad_norm", 0.0).SetTrainable(false).SetNodeValue(ConvertDType(norm, dtypes.Float64))

	debias1 := OneMinus(Pow(Scalar(g, dtype, o.Beta1), step))
	debias2 := OneMinus(Pow(Scalar(g, dtype, o.Beta2), step))
	i := 0
	for v := range scope.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		o.apply(store, v, ConvertDType(grads[i], dtype), lr, debias1, debias2, dtype)
		i++
	}
}

func (o *AdamW) apply(store *mlmodel.Store, v *mlmodel.Variable, grad, lr, debias1, debias2 *Node, dtype dtypes.DType) {
	g := grad.Graph()
	momentShape := shapes.Make(dtype, v.Shape().Dimensions...)
	moments := store.Scope(path.Join("/adamw", v.Scope())).WithInitializer(initializer.Zero)
	m1 := moments.VariableWithShape(v.Name()+"_m", momentShape).SetTrainable(false)
	m2 := moments.VariableWithShape(v.Name()+"_v", momentShape).SetTrainable(false)
	first := Add(MulScalar(m1.NodeValue(g), o.Beta1), MulScalar(grad, 1-o.Beta1))
	second := Add(MulScalar(m2.NodeValue(g), o.Beta2), MulScalar(Square(grad), 1-o.Beta2))
	m1.SetNodeValue(first)
	m2.SetNodeValue(second)
	update := Div(Div(first, debias1), AddScalar(Sqrt(Div(second, debias2)), o.Epsilon))
	value := ConvertDType(v.NodeValue(g), dtype)
	if o.decays(v) {
		update = Add(update, MulScalar(value, o.WeightDecay))
	}
	v.SetNodeValue(ConvertDType(Sub(value, Mul(lr, update)), v.DType()))
}

// decays says whether weight decay applies to v: matrices only, never the names in NoDecay.
func (o *AdamW) decays(v *mlmodel.Variable) bool {
	return o.WeightDecay > 0 && v.Shape().Rank() >= 2 && !o.NoDecay[v.Name()]
}

// Schedule is the learning rate at 1-based step s: linear warm-up to LearningRate over WarmupSteps,
// then cosine decay to MinLRRatio * LearningRate at TotalSteps (and constant after).
func (o *AdamW) Schedule(step *Node) *Node {
	g := step.Graph()
	dtype := step.DType()
	peak, floor := o.LearningRate, o.LearningRate*o.MinLRRatio
	warm := float64(max(o.WarmupSteps, 1))
	warmup := MulScalar(MinScalar(DivScalar(step, warm), 1), peak)
	decaySteps := float64(max(o.TotalSteps-o.WarmupSteps, 1))
	progress := ClipScalar(DivScalar(AddScalar(step, -float64(o.WarmupSteps)), decaySteps), 0, 1)
	cosine := AddScalar(MulScalar(AddScalar(Cos(MulScalar(progress, math.Pi)), 1), 0.5*(peak-floor)), floor)
	return Where(LessOrEqual(step, Scalar(g, dtype, float64(o.WarmupSteps))), warmup, cosine)
}

// ClipByGlobalNorm rescales grads so that their global L2 norm sqrt(sum_i |g_i|^2) is at most maxNorm
// (no-op when maxNorm <= 0). It returns the clipped gradients and the norm before clipping.
func ClipByGlobalNorm(grads []*Node, maxNorm float64) ([]*Node, *Node) {
	g := grads[0].Graph()
	sum := ScalarZero(g, dtypes.Float64)
	for _, grad := range grads {
		sum = Add(sum, ConvertDType(ReduceAllSum(Square(grad)), dtypes.Float64))
	}
	norm := Sqrt(sum)
	if maxNorm <= 0 {
		return grads, norm
	}
	// scale = min(1, maxNorm / norm); the epsilon keeps a zero gradient at zero rather than NaN.
	scale := MinScalar(Div(Scalar(g, dtypes.Float64, maxNorm), AddScalar(norm, 1e-12)), 1)
	clipped := make([]*Node, len(grads))
	for i, grad := range grads {
		clipped[i] = Mul(grad, ConvertDType(scale, grad.DType()))
	}
	return clipped, norm
}
