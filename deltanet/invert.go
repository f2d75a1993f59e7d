package deltanet

import (
	"fmt"

	"github.com/engramlx/engram/layers"

	. "github.com/gomlx/gomlx/core/graph"
)

// substitutionBlock is the largest diagonal block InvertUnitLower inverts by forward substitution;
// larger blocks are assembled from these by doubling.
const substitutionBlock = 16

// InvertUnitLower returns (I + A)^-1 for A [..., C, C] strictly lower-triangular.
//
// Diagonal blocks of size b <= 16 (b = C / 2^m) are inverted by unrolled forward substitution, then
// neighbouring blocks are merged, b -> 2b, by the block formula
//
//	[[L11, 0], [L21, L22]]^-1 = [[T11, 0], [-T22 L21 T11, T22]],  Tjj = Ljj^-1,
//
// one batched step per doubling. Unlike the product (I - A)(I + A^2)(I + A^4)..., which sums powers of A
// that grow like binomial coefficients when keys are correlated and cancel catastrophically in float32,
// every step here works with inverses of the triangular blocks themselves (see invert_test.go for the
// float32 comparison).
//
// Its gradient is the closed form dA = -T^T dT T^T (two batched products), not the autodiff of the
// substitution.
func InvertUnitLower(a *Node) *Node {
	inv, _ := invertUnitLowerWith(a, func(inv *Node) *Node { return inv })
	return inv
}

// invertUnitLowerShared is InvertUnitLower returning T as a layers.Shared (for callers reading it in
// several products) and T^T, which its gradient uses: one transpose for the caller's gradients and
// this one.
func invertUnitLowerShared(a *Node) (t *layers.Shared, tT *Node) {
	_, tT = invertUnitLowerWith(a, func(inv *Node) *Node {
		t = layers.Share(inv)
		return t.Node()
	})
	return t, tT
}

// invertUnitLowerWith builds (I + A)^-1 with its custom gradient and returns read(it) with its
// transpose, which the gradient reads.
func invertUnitLowerWith(a *Node, read func(inv *Node) *Node) (t, tT *Node) {
	dims := a.Shape().Dimensions
	rank := len(dims)
	if rank < 2 || dims[rank-1] != dims[rank-2] {
		panic(fmt.Errorf("deltanet.InvertUnitLower: want A [..., C, C], got %s", a.Shape()))
	}
	batchAxes := rank - 2
	inv := customGradient([]*Node{a},
		func(in []*Node) *Node { return invertUnitLower(in[0]) },
		func(v *Node) []*Node {
			// d(A^-1) = -A^-1 dA A^-1, so dA = -T^T v T^T: two products.
			return []*Node{Neg(layers.BatchedMatMulT(layers.BatchedMatMul(tT, v, batchAxes), t, batchAxes))}
		})
	t = read(inv)
	tT = layers.TransposeByProduct(t)
	return t, tT
}

// invertUnitLower is InvertUnitLower without its custom gradient (autodiff of the substitution would
// slice, pad and transpose per row).
func invertUnitLower(a *Node) *Node {
	dims := a.Shape().Dimensions
	rank := len(dims)
	size := dims[rank-1]
	batch := 1
	for _, d := range dims[:rank-2] {
		batch *= d
	}
	block := size
	for block > substitutionBlock && block%2 == 0 {
		block /= 2
	}
	// One free reshape of a (its only use) into rows cut in pieces of the first block size; every block
	// is gathered from it. (A reshape of a node with several uses is a copy on the Go backend, 8 MB per
	// use at B=8, H=4, T=1024, C=64.)
	pieces := Reshape(a, batch*size, size/block, block)
	inv := substituteBlocks(pieces, batch, block) // [batch, size/block, block, block]
	for b := block; b < size; b *= 2 {
		inv = mergeBlocks(pieces, inv, b)
	}
	return Reshape(inv, dims...)
}

// substituteBlocks inverts the diagonal blocks of size b of I + A, given as pieces [M*C, C/b, b] (A [M,
// C, C] with its rows cut in pieces of b), by forward substitution: row r of T = (I + L)^-1 is e_r -
// sum_{i<r} L_ri T_i. It returns [M, C/b, b, b]. (Running it as the fixed-point iteration T <- I - L T
// on whole blocks, b - 1 batched b x b products, was slower: the Go backend packs each small product's
// operands separately.)
func substituteBlocks(pieces *Node, m, b int) *Node {
	size := pieces.Shape().Dimensions[0] / m
	l := gatherBlocks(pieces, m, b, size/b, func(j int) (row, col int) { return j * b, j * b }) // [M, C/b, b, b]
	lead := l.Shape().Dimensions[:2]
	identity := layers.IdentityMatrix(l, b)
	unit := func(r int) *Node { // e_r broadcast to [M, C/b, 1, b]
		row := SliceAxis(identity, 0, AxisRange(r, r+1))
		return BroadcastToDims(ExpandLeftToRank(row, 4), lead[0], lead[1], 1, b)
	}
	done := unit(0)
	for r := 1; r < b; r++ {
		coeffs := Slice(l, AxisRange(), AxisRange(), AxisRange(r, r+1), AxisRange(0, r)) // [M, C/b, 1, r]
		row := Sub(unit(r), Einsum("mjxi,mjic->mjxc", coeffs, done))
		done = Concatenate([]*Node{done, row}, 2)
	}
	return done
}

// mergeBlocks turns the inverses of diagonal blocks of size b, inv [M, C/b, b, b], into the inverses of
// diagonal blocks of size 2b, [M, C/(2b), 2b, 2b], reading the off-diagonal blocks L21 from the pieces
// of A (see substituteBlocks).
func mergeBlocks(pieces, inv *Node, b int) *Node {
	dims := inv.Shape().Dimensions
	pairs := dims[1] / 2
	l21 := gatherBlocks(pieces, dims[0], b, pairs, func(j int) (row, col int) { return (2*j + 1) * b, 2 * j * b }) // [M, pairs, b, b]
	halves := layers.GatherPieces(Reshape(inv, dims[0], pairs, 2, b, b), 2)
	t11, t22 := halves[0], halves[1]
	t21 := Neg(Einsum("mjrs,mjsc->mjrc", Einsum("mjrs,mjsc->mjrc", t22, l21), t11))
	top := Concatenate([]*Node{t11, ZerosLike(t11)}, 3)
	bottom := Concatenate([]*Node{t21, t22}, 3)
	return Concatenate([]*Node{top, bottom}, 2)
}

// gatherBlocks returns the count blocks of size b x b whose top-left corners are at(j) (columns
// multiples of b) of each of the M matrices [C, C] given as pieces [M*C, C/p, p] (rows cut in pieces of p,
// p dividing b), as [M, count, b, b]: one Gather of pieces (the Go backend copies each with memmove; its
// Slice copies element by element).
func gatherBlocks(pieces *Node, m, b, count int, at func(j int) (row, col int)) *Node {
	dims := pieces.Shape().Dimensions
	size, piece := dims[0]/m, dims[2]
	perRow := b / piece
	indices := make([]int32, 0, m*count*b*perRow*2)
	for i := range m {
		for j := range count {
			row, col := at(j)
			for r := range b {
				for p := range perRow {
					indices = append(indices, int32(i*size+row+r), int32(col/piece+p))
				}
			}
		}
	}
	return Reshape(Gather(pieces, Reshape(Const(pieces.Graph(), indices), m, count, b, perRow, 2), true), m, count, b, b)
}
