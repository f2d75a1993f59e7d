package deltanet

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// The normalisations the layer needs, written with Div and Sqrt: GoMLX v0.28.8 defines no gradient for
// Rsqrt, which layers.L2NormLast and layers.RMSNormalize use, and layers.RMSNorm multiplies by its
// rank-1 weight without broadcasting it. Same formulas and the same variable name ("weight").

// l2Normalize is x / sqrt(sum(x^2 over the last axis) + eps).
func l2Normalize(x *Node, eps float64) *Node {
	return Div(x, Sqrt(AddScalar(ReduceAndKeep(Square(x), ReduceSum, -1), eps)))
}

// headNorm is RMSNorm over the last axis of o [B, T, H, d_v] with a learned weight "weight" [d_v]
// (init 1) shared by the heads: o / sqrt(mean(o^2) + eps) * w.
func headNorm(scope *model.Scope, o *Node, eps float64) *Node {
	width := o.Shape().Dimensions[o.Rank()-1]
	w := scope.WithInitializer(initializer.One).
		VariableWithShape("weight", shapes.Make(o.DType(), width)).NodeValue(o.Graph())
	normalized := Div(o, Sqrt(AddScalar(ReduceAndKeep(Square(o), ReduceMean, -1), eps)))
	return Mul(normalized, ExpandLeftToRank(w, o.Rank()))
}
