package mom

import (
	"math"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// The norms and gate initialisers of deltanet's layer (deltanet/norm.go, layer.go), which keeps them
// unexported; the same formulas and variable names, so a one-memory MoM layer and a gated_deltanet
// layer read the same checkpoint keys. Div by Sqrt because Rsqrt has no gradient in GoMLX v0.28.8.

// l2Normalize is x / sqrt(sum(x^2 over the last axis) + eps).
func l2Normalize(x *Node, eps float64) *Node {
	return Div(x, Sqrt(AddScalar(ReduceAndKeep(Square(x), ReduceSum, -1), eps)))
}

// headNorm is RMSNorm over the last axis of o [B, T, H, d_v] with a learned weight "weight" [d_v] (init
// 1) shared by the heads.
func headNorm(scope *model.Scope, o *Node, eps float64) *Node {
	width := o.Shape().Dimensions[o.Rank()-1]
	w := scope.WithInitializer(initializer.One).
		VariableWithShape("weight", shapes.Make(o.DType(), width)).NodeValue(o.Graph())
	normalized := Div(o, Sqrt(AddScalar(ReduceAndKeep(Square(o), ReduceMean, -1), eps)))
	return Mul(normalized, ExpandLeftToRank(w, o.Rank()))
}

// aLogInit draws A ~ U(0, 16) per head (floored at 1e-4 so log A is finite) and returns log A.
func aLogInit(scope *model.Scope) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		return Log(MaxScalar(MulScalar(scope.RandomUniform(g, shape), 16), 1e-4))
	}
}

// dtBiasInit draws dt = exp(U(log 1e-3, log 1e-1)) (floored at 1e-4) and returns softplus^-1(dt) =
// dt + log(1 - exp(-dt)), so softplus(dt_bias) = dt at initialisation.
func dtBiasInit(scope *model.Scope) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		lo, hi := math.Log(1e-3), math.Log(1e-1)
		dt := MaxScalar(Exp(AddScalar(MulScalar(scope.RandomUniform(g, shape), hi-lo), lo)), 1e-4)
		return Add(dt, Log(Neg(Expm1(Neg(dt)))))
	}
}
