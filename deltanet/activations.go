package deltanet

import (
	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
)

// silu is layers.SiLU (the same forward ops, so the same values) with its gradient written out:
// with s = sigmoid(x) and y = x s, dy/dx = s (1 + x (1 - s)) = s + y - y s, four passes over x's size
// where autodiff of x * FastSigmoid(x) takes eight (the product rule, the scalings and tanh's
// derivative 1 - t^2 each a pass).
//
// The gradient reads y as the op's result (after its custom-gradient identity): reading the product
// itself would give it a second consumer, and the Go backend would copy it into the identity.
func silu(x *Node) *Node {
	var s, y *Node
	y = customGradient([]*Node{x},
		func(in []*Node) *Node {
			s = layers.FastSigmoid(in[0])
			return Mul(in[0], s)
		},
		func(v *Node) []*Node { return []*Node{Mul(v, Add(Sub(y, Mul(y, s)), s))} })
	return y
}

// l2NormLast is layers.L2NormLast (the same forward ops) with its gradient written out: for
// y = x / n, n = sqrt(sum x^2 + eps) over the last axis, dx = (v - y sum(v y)) / n, five passes over
// x's size where autodiff of the division, square root and square takes about twice as many. (y is
// read as the op's result, as in silu.)
func l2NormLast(x *Node, eps float64) *Node {
	var norm, y *Node
	y = customGradient([]*Node{x},
		func(in []*Node) *Node {
			norm = Sqrt(AddScalar(ReduceAndKeep(Square(in[0]), ReduceSum, -1), eps))
			return Div(in[0], norm)
		},
		func(v *Node) []*Node {
			along := ReduceAndKeep(Mul(v, y), ReduceSum, -1)
			return []*Node{Div(Sub(v, Mul(y, along)), norm)}
		})
	return y
}
