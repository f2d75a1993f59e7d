package deltanet

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// customGradient returns forward(inputs) with its gradient with respect to inputs[i] given by
// backward(v)[i], v the adjoint of the result, instead of the autodiff of forward.
//
// GoMLX has custom gradients only for identities (IdentityWithCustomGradient), so each input is passed
// through one whose gradient returns what backward computed, and the result through one whose
// gradient calls backward and records its values (autodiff reaches the result before its inputs).
// The autodiff of forward is still built but nothing reads it: dead code that no backend executes.
func customGradient(inputs []*Node, forward func(in []*Node) *Node, backward func(v *Node) []*Node) *Node {
	adjoints := make([]*Node, len(inputs))
	wrapped := make([]*Node, len(inputs))
	for i, x := range inputs {
		wrapped[i] = IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
			adj := adjoints[i]
			adjoints[i] = nil
			if adj == nil {
				return ZerosLike(x)
			}
			return adj
		})
	}
	return IdentityWithCustomGradient(forward(wrapped), func(_, v *Node) *Node {
		copy(adjoints, backward(v))
		return v
	})
}

// product is x y over the leading batch axes, x [b..., n, k], y [b..., k, m], given also xT = x^T
// [b..., k, n] (the same values, computed without a transpose by the caller). Its gradient needs no
// transpose either: dx = v y^T (the kernel's "transposed" layout) and dy = xT v. Autodiff of x y would
// compute dy = x^T v by transposing v and then the result (the Go backend's generic transpose, per
// product).
func product(x, xT, y *Node, batchAxes int) *Node {
	return customGradient([]*Node{x, y},
		func(in []*Node) *Node { return matmul(in[0], in[1], batchAxes) },
		func(v *Node) []*Node { return []*Node{matmulT(v, y, batchAxes), matmul(xT, v, batchAxes)} })
}
