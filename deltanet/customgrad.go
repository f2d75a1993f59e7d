package deltanet

import (
	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
)

// customGradient is layers.CustomGradient for backward functions that need only the adjoint.
func customGradient(inputs []*Node, forward func(in []*Node) *Node, backward func(v *Node) []*Node, shared ...*layers.Shared) *Node {
	return layers.CustomGradient(inputs, forward, func(_ []*Node, v *Node) []*Node { return backward(v) }, shared...)
}
