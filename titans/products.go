package titans

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// splitPieces returns the dims[axis] pieces of x along axis, the axis removed, like
// Squeeze(SliceAxis(x, axis, AxisElem(i)), axis) for every i, but with the gradient of x assembled by one
// Concatenate of the pieces' gradients. Autodiff of N separate slices pads each piece's gradient back to
// the full shape and sums N full-size tensors, O(N^2) work in the number of pieces (chunks).
//
// Each piece passes through an identity whose custom gradient records the piece's adjoint; x passes
// through one whose custom gradient concatenates them (zeros for pieces the loss does not reach). Reverse
// autodiff visits the pieces before x's identity (they are built after it). The padded sum autodiff
// also builds for x is never read: dead code the backends do not execute.
func splitPieces(x *Node, axis int) []*Node {
	axis = MustAdjustAxis(axis, x)
	num := x.Shape().Dimensions[axis]
	if num == 1 {
		return []*Node{Squeeze(x, axis)}
	}
	pieceShape := x.Shape().Clone()
	pieceShape.Dimensions[axis] = 1
	adjoints := make([]*Node, num)
	whole := IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
		parts := make([]*Node, num)
		for i, adj := range adjoints {
			if adj == nil {
				parts[i] = Zeros(x.Graph(), pieceShape)
			} else {
				parts[i] = Reshape(adj, pieceShape.Dimensions...)
			}
		}
		clear(adjoints)
		return Concatenate(parts, axis)
	})
	pieces := make([]*Node, num)
	for i := range pieces {
		piece := Squeeze(SliceAxis(whole, axis, AxisElem(i)), axis)
		pieces[i] = IdentityWithCustomGradient(piece, func(_, v *Node) *Node {
			adjoints[i] = v
			return v
		})
	}
	return pieces
}

// batchAxes returns 0, 1, ..., n-1.
func batchAxes(n int) []int {
	axes := make([]int, n)
	for i := range axes {
		axes[i] = i
	}
	return axes
}

// The batched products below keep to the two layouts the Go backend's matmul kernel takes as they are
// (batch axes leading, the lhs contracting its last axis, the rhs contracting its first non-batch axis
// or its last), in the forward pass and in their gradients, which are written here rather than left to
// autodiff: GoMLX's DotGeneral gradient contracts the adjoint over a non-last axis and transposes its
// result back, and the backend runs those transposes (a swap of the last two axes of a rank >= 3 tensor)
// element by element. Where a swap is needed it is swapLast, built from the backend's fast transposes.

// rawMM is x y over all leading axes: x [..., n, k], y [..., k, m] -> [..., n, m].
func rawMM(x, y *Node) *Node {
	r := x.Rank()
	return DotGeneral(x, []int{r - 1}, batchAxes(r-2), y, []int{r - 2}, batchAxes(r-2))
}

// rawMMT is x y^T over all leading axes: x [..., n, m], y [..., k, m] -> [..., n, k].
func rawMMT(x, y *Node) *Node {
	r := x.Rank()
	return DotGeneral(x, []int{r - 1}, batchAxes(r-2), y, []int{r - 1}, batchAxes(r-2))
}

// mm is rawMM with the gradients dx = v y^T and dy = x^T v in kernel layouts (x^T by swapLast).
func mm(x, y *Node) *Node {
	return customGradient([]*Node{x, y}, func(in []*Node) *Node { return rawMM(in[0], in[1]) },
		func(v *Node) []*Node { return []*Node{rawMMT(v, y), rawMM(swapLast(x), v)} })
}

// mmT is rawMMT with the gradients dx = v y and dy = v^T x in kernel layouts.
func mmT(x, y *Node) *Node {
	return customGradient([]*Node{x, y}, func(in []*Node) *Node { return rawMMT(in[0], in[1]) },
		func(v *Node) []*Node { return []*Node{rawMM(v, y), rawMM(swapLast(v), x)} })
}

// tmm is x^T y over all leading axes, x [..., s, k], y [..., s, m] -> [..., k, m] (a sum over s), as
// mm(swapLast(x), y).
func tmm(x, y *Node) *Node { return mm(swapLast(x), y) }

// swapLast swaps the last two axes of x [..., a, b] -> [..., b, a] with two transposes the Go backend has
// fast paths for: a tiled 2D transpose of [N a, b] to [b, N a], then [b, N, a] -> [N, b, a], which moves
// rows of a. Its gradient is swapLast again (the transposes' own gradients are those fast paths).
func swapLast(x *Node) *Node {
	dims := x.Shape().Dimensions
	r := len(dims)
	if r == 2 {
		return Transpose(x, 0, 1)
	}
	a, b := dims[r-2], dims[r-1]
	outer := x.Shape().Size() / (a * b)
	if a == 1 || b == 1 {
		out := append(append([]int(nil), dims[:r-2]...), b, a)
		return Reshape(x, out...)
	}
	t := Transpose(Reshape(x, outer*a, b), 1, 0)
	t = TransposeAllAxes(Reshape(t, b, outer, a), 1, 0, 2)
	out := append(append([]int(nil), dims[:r-2]...), b, a)
	return Reshape(t, out...)
}

// customGradient returns forward(inputs) whose gradient with respect to inputs[i] is backward(v)[i], v
// the adjoint of the result, instead of the autodiff of forward. GoMLX has custom gradients only for
// identities: each input goes through one whose gradient returns what backward computed, and the result
// through one whose gradient calls backward (reverse autodiff reaches the result before the inputs). The
// autodiff of forward is still built, but nothing reads it, so no backend executes it.
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
