package layers

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// CustomGradient returns forward(inputs) whose gradient with respect to inputs[i] is backward(in, v)[i],
// v the adjoint of the result, instead of the autodiff of forward. The chunked ops use it to give their
// products gradients laid out for the Go backend's matmul (no transposes) and to assemble per-chunk
// gradients with one concatenate.
//
// GoMLX has custom gradients only for identities: each input goes through one whose gradient returns
// what backward computed, and the result through one whose gradient calls backward (reverse autodiff
// reaches the result before the inputs). The autodiff of forward is still built, but nothing reads it,
// so no backend executes it. forward and backward both read the inputs through those identities (in),
// so that an input used only here has the identity as its one consumer, which the Go backend then runs
// without a copy. The gradient is first order only: differentiating backward's result again would not
// see its inputs.
func CustomGradient(inputs []*Node, forward func(in []*Node) *Node, backward func(in []*Node, v *Node) []*Node) *Node {
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
		copy(adjoints, backward(wrapped, v))
		return v
	})
}
