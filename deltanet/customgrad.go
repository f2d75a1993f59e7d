package deltanet

import (
	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
)

// customGradient is layers.CustomGradient for backward functions that need only the adjoint.
func customGradient(inputs []*Node, forward func(in []*Node) *Node, backward func(v *Node) []*Node, shared ...*layers.Shared) *Node {
	return layers.CustomGradient(inputs, forward, func(_ []*Node, v *Node) []*Node { return backward(v) }, shared...)
}

// product is x y over the leading batch axes, x [b..., n, k], y [b..., k, m], given also xT = x^T
// [b..., k, n] (the same values, computed without a transpose by the caller). Its gradient needs no
// transpose either: dx = v y^T (the kernel's "transposed" layout) and dy = xT v. Autodiff of x y would
// compute dy = x^T v by transposing v and then the result (the Go backend's generic transpose, per
// product). x or y may be the Node of one of shared (layers.Share): operands several products read go
// through one identity, not one per product (each of which the Go backend would copy).
func product(x, xT, y *Node, batchAxes int, shared ...*layers.Shared) *Node {
	return layers.CustomGradient([]*Node{x, y},
		func(in []*Node) *Node { return matmul(in[0], in[1], batchAxes) },
		// y through its identity (in[1]): used only here, it is not copied.
		func(in []*Node, v *Node) []*Node {
			return []*Node{matmulT(v, in[1], batchAxes), matmul(xT, v, batchAxes)}
		}, shared...)
}
