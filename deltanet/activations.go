package deltanet

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
)

// silu is x sigmoid(x) as GoMLX's activation.Swish: on a backend with a fused activation (the Go
// backend) one SIMD pass forward and one for the gradient (FusedActivationVJP, reading x, y and the
// adjoint), where x * FastSigmoid(x) took five passes forward and four for a written-out gradient; on
// other backends (XLA) the decomposed x * Sigmoid(x), which the compiler fuses itself. The Go
// backend's Logistic is vectorised since compute v0.1.14, within 1.2e-14 relative of
// 1 / (1 + exp(-x)) in float64.
func silu(x *Node) *Node { return activation.Swish(x) }

// siluL2NormLast is layers.L2NormLast(silu(x)) with the normalisation's gradient written out: for
// y = silu(x) and z = y / n, n = sqrt(sum y^2 + eps) over the last axis, dy = (v - z sum(v z)) / n (five
// passes over x's size, where autodiff of the division, square root and square takes about twice as
// many); silu's own gradient is the fused one.
func siluL2NormLast(x *Node, eps float64) *Node {
	var norm, z *Node
	z = customGradient([]*Node{silu(x)},
		func(in []*Node) *Node {
			norm = Sqrt(AddScalar(ReduceAndKeep(Square(in[0]), ReduceSum, -1), eps))
			return Div(in[0], norm)
		},
		func(v *Node) []*Node {
			along := ReduceAndKeep(Mul(v, z), ReduceSum, -1)
			return []*Node{Div(Sub(v, Mul(z, along)), norm)}
		})
	return z
}
