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
func SiLU(x *Node) *Node { return Mul(x, FastSigmoid(x)) }

// FastSigmoid is sigmoid(x). It was (1 + tanh(x/2)) / 2 when the Go backend (compute v0.1.6) evaluated
// Logistic with a scalar math.Exp per element; since compute v0.1.14 its Logistic is vectorised (within
// 1.2e-14 relative of 1 / (1 + exp(-x)) in float64), so it is GoMLX's Sigmoid: one pass instead of four
// forward, and autodiff's s (1 - s) instead of tanh's chain backward.
func FastSigmoid(x *Node) *Node { return Sigmoid(x) }

// ExpNonPositive is exp(x) for the decay factors x <= 0. It was (1 + tanh(x/2)) / (1 - tanh(x/2)) when
// the Go backend's Exp was a scalar math.Exp per element; since compute v0.1.14 Exp is vectorised, so
// it is Exp (one pass instead of five, and relative instead of absolute error for small factors).
func ExpNonPositive(x *Node) *Node { return Exp(x) }
