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

// siluL2NormLast is layers.L2NormLast(layers.SiLU(x)) (the same forward ops) as one op with its
// gradient written out: for y = silu(x) and z = y / n, n = sqrt(sum y^2 + eps) over the last axis,
// dy = (v - z sum(v z)) / n (five passes over x's size, where autodiff of the division, square root and
// square takes about twice as many), then dx = dy (s + y - y s) as in silu. One op, so the normalisation
// reads y without an identity between them (which the Go backend would copy, y having other readers).
func siluL2NormLast(x *Node, eps float64) *Node {
	var s, y, norm, z *Node
	z = customGradient([]*Node{x},
		func(in []*Node) *Node {
			s = layers.FastSigmoid(in[0])
			y = Mul(in[0], s)
			norm = Sqrt(AddScalar(ReduceAndKeep(Square(y), ReduceSum, -1), eps))
			return Div(y, norm)
		},
		func(v *Node) []*Node {
			along := ReduceAndKeep(Mul(v, z), ReduceSum, -1)
			dy := Div(Sub(v, Mul(z, along)), norm)
			return []*Node{Mul(dy, Add(Sub(y, Mul(y, s)), s))}
		})
	return z
}
