package layers

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// SplitAxis returns the dim(axis) pieces of x along axis, the axis removed, like
// Squeeze(SliceAxis(x, axis, AxisElem(i)), axis) for every i, but with the gradient of x assembled by
// one Concatenate of the pieces' gradients. Autodiff of N separate slices pads each piece's gradient
// back to the full shape and sums N full-size tensors: O(N^2) in the number of pieces (chunks), which
// is what the chunked recurrences (deltanet, titans) cut their operands into.
//
// The pieces' custom gradients record their adjoints; x's custom gradient concatenates them (zeros for
// pieces the loss does not reach) and ignores the padded sum autodiff built, which is then dead code
// that no backend executes. Autodiff visits the pieces before x (they are built after it).
func SplitAxis(x *Node, axis int) []*Node {
	axis = MustAdjustAxis(axis, x)
	if x.Shape().Dimensions[axis] == 1 {
		return []*Node{Squeeze(x, axis)}
	}
	var assemble func() *Node
	whole := IdentityWithCustomGradient(x, func(x, _ *Node) *Node { return assemble() })
	parts, concat := splitPieces(whole, axis)
	assemble = concat
	return parts
}

// SplitSizes returns the pieces of x along axis with the given sizes (which must add up to dim(axis)),
// like SliceAxis for each, but with x's gradient one Concatenate of the pieces' adjoints (zeros for
// pieces the loss does not reach). Autodiff of the slices pads each piece's adjoint to x's full shape
// (the Go backend zero-fills the whole buffer first, element by element) and adds them up: for a
// projection cut into its parts (mamba2's in_proj), 12% of the layer's fwd+bwd time.
func SplitSizes(x *Node, axis int, sizes ...int) []*Node {
	axis = MustAdjustAxis(axis, x)
	total := 0
	for _, size := range sizes {
		total += size
	}
	if total != x.Shape().Dimensions[axis] {
		panic(fmt.Errorf("layers.SplitSizes: sizes %v add up to %d, want dim(%d) = %d of %s", sizes, total, axis, x.Shape().Dimensions[axis], x.Shape()))
	}
	var assemble func() *Node
	whole := IdentityWithCustomGradient(x, func(x, _ *Node) *Node { return assemble() })
	cut, start := make([]*Node, len(sizes)), 0
	for i, size := range sizes {
		cut[i] = SliceAxis(whole, axis, AxisRange(start, start+size))
		start += size
	}
	pieces, concat := recordAdjoints(cut, axis, false)
	assemble = concat
	return pieces
}

// SplitShared is SplitAxis of a Shared: the pieces are read from its node and the concatenation of
// their adjoints is added to its gradient.
func SplitShared(s *Shared, axis int) []*Node {
	parts, concat := splitPieces(s.Node(), MustAdjustAxis(axis, s.Node()))
	s.add(concat)
	return parts
}

// splitPieces cuts whole into its pieces along axis (each through an identity recording its adjoint)
// and returns with them the function that concatenates the recorded adjoints (zeros for pieces the loss
// does not reach) into the adjoint of whole.
func splitPieces(whole *Node, axis int) ([]*Node, func() *Node) {
	return recordAdjoints(GatherPieces(whole, axis), axis, true)
}

// recordAdjoints passes each of pieces (cut in order along axis from one tensor; squeezed: without that
// axis) through an identity recording its adjoint, and returns them with the function that
// concatenates the recorded adjoints along axis (zeros for pieces the loss does not reach) into the
// adjoint of the tensor they were cut from.
func recordAdjoints(pieces []*Node, axis int, squeezed bool) ([]*Node, func() *Node) {
	adjoints := make([]*Node, len(pieces))
	cut := make([]shapes.Shape, len(pieces)) // each piece's shape in the tensor, axis kept
	for i, piece := range pieces {
		cut[i] = piece.Shape().Clone()
		if squeezed {
			cut[i].Dimensions = slices.Insert(cut[i].Dimensions, axis, 1)
		}
		pieces[i] = IdentityWithCustomGradient(piece, func(_, v *Node) *Node {
			adjoints[i] = v
			return v
		})
	}
	concat := func() *Node {
		parts := make([]*Node, len(adjoints))
		for i, adj := range adjoints {
			if adj == nil {
				parts[i] = Zeros(pieces[i].Graph(), cut[i])
			} else {
				parts[i] = Reshape(adj, cut[i].Dimensions...)
			}
		}
		clear(adjoints)
		return Concatenate(parts, axis)
	}
	return pieces, concat
}

// GatherPieces returns the dim(axis) pieces of x along axis, the axis removed. Each is one Gather of
// contiguous rows, which the Go backend copies with memmove (its Slice copies element by element). Its
// gradient is left to the callers (autodiff of Gather would scatter into a full-size zero tensor per
// piece): use it for values no gradient flows through, or through SplitAxis.
func GatherPieces(x *Node, axis int) []*Node {
	axis = MustAdjustAxis(axis, x)
	dims := x.Shape().Dimensions
	num := dims[axis]
	outer := 1
	for _, d := range dims[:axis] {
		outer *= d
	}
	pieceDims := append(append([]int{}, dims[:axis]...), dims[axis+1:]...)
	parts := make([]*Node, num)
	for n := range parts {
		// Gather indexes the leading axis+1 axes directly: reshaping x to rows first would copy it when
		// it has other consumers.
		starts := make([]int32, 0, outer*(axis+1))
		for o := range outer {
			index := make([]int32, axis+1)
			index[axis] = int32(n)
			for a, rest := axis-1, o; a >= 0; a-- {
				index[a] = int32(rest % dims[a])
				rest /= dims[a]
			}
			starts = append(starts, index...)
		}
		indices := Reshape(Const(x.Graph(), starts), outer, axis+1)
		parts[n] = Reshape(Gather(x, indices, true), pieceDims...)
	}
	return parts
}

// StackAxis is Stack(parts, axis) with the gradient of each part gathered from the result's (autodiff
// of Stack slices it, element by element on the Go backend).
func StackAxis(parts []*Node, axis int) *Node {
	return CustomGradient(parts,
		func(in []*Node) *Node { return Stack(in, axis) },
		func(_ []*Node, v *Node) []*Node { return GatherPieces(v, axis) })
}
