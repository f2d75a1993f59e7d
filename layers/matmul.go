package layers

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Batched products laid out for the Go backend's matmul kernels, and transposes computed as products.
// The chunked ops (deltanet, gla) build on them: the backend multiplies [b..., n, k] by [b..., k, m]
// ("non-transposed") or [b..., m, k] ("transposed") without copies, while any other layout, and
// GoMLX's autodiff of a product (which transposes its adjoint and result), costs transposes.

// TransposeLast swaps the last two axes of x [..., n, m], as the product I x^T (I the m x m identity,
// broadcast over the batch axes; its gradient the same product with the adjoint). The Go backend's
// batched matmul reads its right operand transposed while packing it, so this runs at matmul speed: at
// [512, 64, 64] about 1.6 ns per element against about 3.5 for its transpose, the identity for every
// batch element (built once per graph and shape) included. Every element is 1 * x plus zeros, so the
// values are x's exactly (for finite x).
func TransposeLast(x *Node) *Node {
	return CustomGradient([]*Node{x}, func(in []*Node) *Node { return TransposeByProduct(in[0]) },
		func(_ []*Node, v *Node) []*Node { return []*Node{TransposeByProduct(v)} })
}

// TransposeByProduct is TransposeLast without its custom gradient (for values no gradient flows
// through; autodiff of the product would transpose).
func TransposeByProduct(x *Node) *Node {
	dims := x.Shape().Dimensions
	rank := len(dims)
	n, batch := dims[rank-1], 1
	for _, d := range dims[:rank-2] {
		batch *= d
	}
	// The identity for every batch element, as the outer product ones [batch, 1] x I [1, n*n]: the Go
	// backend writes it at matmul speed, about 8x faster than its BroadcastInDim (values exact: 1 * I).
	eye := Reshape(IdentityMatrix(x, n), 1, n*n)
	eye = DotGeneral(Ones(x.Graph(), shapes.Make(x.DType(), batch, 1)), []int{1}, nil, eye, []int{0}, nil)
	eye = Reshape(eye, append(append([]int{}, dims[:rank-2]...), n, n)...)
	return BatchedMatMulT(eye, x, rank-2)
}

// BatchedMatMul is the batched product x y of x [b..., n, k] and y [b..., k, m] over the leading
// batchAxes axes: the Go backend's "non-transposed" kernel layout, no copies.
func BatchedMatMul(x, y *Node, batchAxes int) *Node {
	batch := leadingAxes(batchAxes)
	return DotGeneral(x, []int{x.Rank() - 1}, batch, y, []int{batchAxes}, batch)
}

// BatchedMatMulT is the batched product x y^T of x [b..., n, k] and y [b..., m, k]: the "transposed"
// kernel layout, no copies.
func BatchedMatMulT(x, y *Node, batchAxes int) *Node {
	batch := leadingAxes(batchAxes)
	return DotGeneral(x, []int{x.Rank() - 1}, batch, y, []int{y.Rank() - 1}, batch)
}

// leadingAxes is 0, 1, ..., n-1.
func leadingAxes(n int) []int {
	axes := make([]int, n)
	for i := range axes {
		axes[i] = i
	}
	return axes
}

// Product is x y over the leading batch axes, x [b..., n, k], y [b..., k, m], given also xT = x^T
// [b..., k, n] (the same values, computed without a transpose by the caller). Its gradient needs no
// transpose either: dx = v y^T (the kernel's "transposed" layout) and dy = xT v. Autodiff of x y would
// compute dy = x^T v by transposing v and then the result (the Go backend's generic transpose, per
// product). x or y may be the Node of one of shared (Share): operands several products read go
// through one identity, not one per product (each of which the Go backend would copy).
func Product(x, xT, y *Node, batchAxes int, shared ...*Shared) *Node {
	return CustomGradient([]*Node{x, y},
		func(in []*Node) *Node { return BatchedMatMul(in[0], in[1], batchAxes) },
		// y through its identity (in[1]): used only here, it is not copied.
		func(in []*Node, v *Node) []*Node {
			return []*Node{BatchedMatMulT(v, in[1], batchAxes), BatchedMatMul(xT, v, batchAxes)}
		}, shared...)
}
