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
//
// An input that is the Node of one of shared is read through that Shared's identity instead of one of
// its own, and its adjoint is added to the Shared's (see Share).
func CustomGradient(inputs []*Node, forward func(in []*Node) *Node, backward func(in []*Node, v *Node) []*Node, shared ...*Shared) *Node {
	adjoints := make([]*Node, len(inputs))
	wrapped := make([]*Node, len(inputs))
	owners := make([]*Shared, len(inputs))
	for i, x := range inputs {
		for _, s := range shared {
			if s.node == x {
				owners[i] = s
			}
		}
		if owners[i] != nil {
			wrapped[i] = x
			continue
		}
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
		for i, s := range owners {
			if s != nil && adjoints[i] != nil {
				adj := adjoints[i]
				s.add(func() *Node { return adj })
				adjoints[i] = nil
			}
		}
		return v
	})
}

// Shared is a node that several custom-gradient ops (CustomGradient, SplitShared) read through one
// identity: its gradient is the sum of the adjoints those ops compute. The Go backend copies an
// identity's input when the input has other consumers still to run, so one identity per op copied a
// shared input once per op; through a Shared the input's one consumer is the Shared's identity.
//
// Every use of Node on the loss path must be through such an op: autodiff's own adjoint of Node (what
// ordinary ops reading it would contribute) is discarded. Reading Node for values no gradient flows
// through (the transposed operands the custom gradients use) is fine. The ops must be built after Share
// (autodiff then reaches them before the Shared).
type Shared struct {
	node     *Node
	adjoints []func() *Node
}

// Share returns x as a Shared.
func Share(x *Node) *Shared {
	s := &Shared{}
	s.node = IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
		var sum *Node
		for _, adj := range s.adjoints {
			if a := adj(); a != nil {
				if sum == nil {
					sum = a
				} else {
					sum = Add(sum, a)
				}
			}
		}
		s.adjoints = nil
		if sum == nil {
			return ZerosLike(x)
		}
		return sum
	})
	return s
}

// Node is the shared value, to pass to the custom-gradient ops (and to read for gradient-only values).
func (s *Shared) Node() *Node { return s.node }

// add records an adjoint, computed when the Shared's gradient is taken.
func (s *Shared) add(adjoint func() *Node) { s.adjoints = append(s.adjoints, adjoint) }
