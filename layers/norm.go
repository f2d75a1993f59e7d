package layers

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// RMSNorm normalises x over its last axis and scales it by a learned weight "weight" [last] (init 1):
// y = x / sqrt(mean(x^2) + eps) * w  (Zhang & Sennrich, 2019). The statistics are computed in x's dtype.
func RMSNorm(scope *model.Scope, x *Node, eps float64) *Node {
	last := x.Shape().Dimensions[x.Rank()-1]
	w := scope.WithInitializer(initializer.One).
		VariableWithShape("weight", shapes.Make(x.DType(), last)).NodeValue(x.Graph())
	return Mul(RMSNormalize(x, eps), ExpandLeftToRank(w, x.Rank()))
}

// RMSNormalize is RMSNorm without the weight: x / sqrt(mean(x^2 over the last axis) + eps).
func RMSNormalize(x *Node, eps float64) *Node {
	meanSquare := ReduceAndKeep(Square(x), ReduceMean, -1)
	return Div(x, Sqrt(AddScalar(meanSquare, eps)))
}

// L2NormLast is x / sqrt(sum(x^2 over the last axis) + eps), as used for the q and k of linear
// attention (eps 1e-6 in flash-linear-attention).
func L2NormLast(x *Node, eps float64) *Node {
	sumSquare := ReduceAndKeep(Square(x), ReduceSum, -1)
	return Div(x, Sqrt(AddScalar(sumSquare, eps)))
}

// SiLU is x * sigmoid(x).
func SiLU(x *Node) *Node { return Mul(x, Sigmoid(x)) }
