package deltanet

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// chunkDecay holds the decay factors of every chunk, all exp of (sums of) g but computed as products
// of the per-step alpha_t = exp(g_t).
type chunkDecay struct {
	gamma *Node // Gamma_ri = exp(G_r - G_i) = prod_{i<j<=r} alpha_j for i <= r, 0 above: [..., C, C]
	head  *Node // exp(G_r) = prod_{j<=r} alpha_j: [..., C]
	tail  *Node // exp(G_C - G_r) = prod_{r<j<=C} alpha_j: [..., C]
	total *Node // exp(G_C): [..., 1]
}

// newChunkDecay computes the decay factors from the log-decays g [..., C].
//
// Why products and not exp(G_r - G_i): exp is by far the most expensive element-wise op of the Go
// backend (math.Exp per element, and much slower still in GOEXPERIMENT=simd builds), and the C*C
// exponentials dominated the chunk op's profile. Here only the C alphas take an exp; Gamma is built by
// doubling the band of lengths it covers,
//
//	Gamma^(2s)[r, i] = Gamma^(s)[r, i] + P_s[r] Gamma^(s)[r-s, i],   P_s[r] = prod_{r-s<j<=r} alpha_j,
//
// where Gamma^(s) holds the entries with r - i < s and P_2s[r] = P_s[r] P_s[r-s]: log2(C) steps of
// shifts and multiplies. Every factor is alpha_j <= 1 for a decay, so strong decay underflows to 0 and
// nothing overflows; a product of L factors carries L roundings, against the cancellation in G_r - G_i of
// the log-space form.
func newChunkDecay(g *Node) chunkDecay {
	chunk := g.Shape().Dimensions[g.Rank()-1]
	alpha := Exp(g)
	// Gamma^(1) is the identity: only r = i, the empty product.
	dims := append(append([]int{}, g.Shape().Dimensions...), chunk)
	identity := ConvertDType(Diagonal(g.Graph(), chunk), g.DType())
	gamma := BroadcastToDims(ExpandLeftToRank(identity, len(dims)), dims...)
	window := alpha // P_1
	for span := 1; span < chunk; span *= 2 {
		gamma = Add(gamma, Mul(InsertAxes(window, -1), shiftDown(gamma, g.Rank()-1, span)))
		window = Mul(window, shiftDown(window, g.Rank()-1, span))
	}
	first := SliceAxis(alpha, -1, AxisRange(0, 1))
	head := Mul(Squeeze(SliceAxis(gamma, -1, AxisRange(0, 1)), -1), first)
	tail := Squeeze(SliceAxis(gamma, -2, AxisElem(-1)), -2)
	total := SliceAxis(head, -1, AxisElem(-1))
	return chunkDecay{gamma: gamma, head: head, tail: tail, total: total}
}

// shiftDown returns y with y[..., r, ...] = x[..., r - n, ...] along axis, zeros for r < n.
func shiftDown(x *Node, axis, n int) *Node {
	size := x.Shape().Dimensions[axis]
	if n >= size {
		return ZerosLike(x)
	}
	padding := make([]PadAxis, x.Rank())
	padding[axis] = PadAxis{Start: n}
	return Pad(SliceAxis(x, axis, AxisRange(0, size-n)), ScalarZero(x.Graph(), x.DType()), padding...)
}

// strictlyLowerMask is a boolean mask of shape's dimensions (last two [C, C]) true strictly below the
// diagonal.
func strictlyLowerMask(g *Graph, shape shapes.Shape, chunk int) *Node {
	dims := shapes.Make(dtypes.Int32, chunk, chunk)
	mask := LessThan(Iota(g, dims, 1), Iota(g, dims, 0))
	return BroadcastToDims(ExpandLeftToRank(mask, shape.Rank()), shape.Dimensions...)
}
