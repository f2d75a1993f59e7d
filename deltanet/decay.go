package deltanet

import (
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// chunkDecay holds the decay factors of every chunk and the causal masks, for tensors laid out
// [B, H, N, C, ...]. Without the gate (g = 0) every decay factor is 1 and the factors are nil.
type chunkDecay struct {
	lower  *Node // i <= r: bool [1, 1, 1, C, C], broadcast by Where
	strict *Node // i < r: bool [1, 1, 1, C, C]
	gamma  *Node // Gamma_ri = exp(G_r - G_i) for i <= r, 0 above: [B, H, N, C, C]; nil without gate
	head   *Node // exp(G_r): [B, H, N, C]
	tail   *Node // exp(G_C - G_r): [B, H, N, C]
	total  *Node // exp(G_C): [B, H, N, 1, 1]
}

// newChunkDecay computes the decay factors from the log-decays g [B, H, N, C] (nil: no gate) of the
// chunked x [B, H, N, C, ...] (which gives the graph, dtype and chunk length), and the document starts
// starts [B, 1, N, C] (nil: one document; see withDocuments).
//
// G = cumsum(g) within each chunk; every factor is the exp of a difference G_r - G_i with i <= r, a sum
// of log-decays over (i, r], so for decays (g <= 0) nothing overflows and strong decay underflows to 0.
// The arguments above the diagonal (i > r, positive) are replaced by maskedLogDecay before the exp,
// which gives exact zeros there (and zero gradients, exp' = exp), so they neither overflow nor leak NaN
// into the gradient, in one masking pass. The Go backend's Exp is a SIMD kernel since compute v0.1.14,
// so the C*C exponentials per chunk cost less than building Gamma from products of alpha_t by
// log2(C) shift-and-multiply steps, whose shifts (slice + pad, and their gradients) were copies.
func newChunkDecay(x, g, starts *Node) chunkDecay {
	graph := x.Graph()
	chunk := x.Shape().Dimensions[3]
	dims := shapes.Make(dtypes.Int32, 1, 1, 1, chunk, chunk)
	row, col := Iota(graph, dims, 3), Iota(graph, dims, 4)
	d := chunkDecay{lower: GreaterOrEqual(row, col), strict: GreaterThan(row, col)}
	var headKeep, tailKeep, totalKeep *Node
	if starts != nil {
		headKeep, tailKeep, totalKeep = d.withDocuments(starts)
	}
	if g == nil {
		d.head, d.tail, d.total = headKeep, tailKeep, totalKeep
		return d
	}
	cum := CumSum(g, -1)                          // G: [B, H, N, C]
	last := SliceAxis(cum, -1, AxisElem(chunk-1)) // G_C: [B, H, N, 1]
	diff := pairDifferences(cum)                  // G_r - G_i: [B, H, N, C, C]
	d.gamma = Exp(Where(d.lower, diff, Scalar(graph, x.DType(), maskedLogDecay)))
	d.head = Exp(cum)
	d.tail = Exp(Sub(last, cum))
	d.total = InsertAxes(Exp(last), -1)
	if starts != nil {
		d.head, d.tail, d.total = Mul(d.head, headKeep), Mul(d.tail, tailKeep), Mul(d.total, totalKeep)
	}
	return d
}

// maskedLogDecay is the log-decay that masks a pair: its exp underflows to exactly 0 in every float
// dtype (in float16 it rounds to -Inf, whose exp is 0 too).
const maskedLogDecay = -1e30

// withDocuments restricts the masks to pairs of tokens of one document and returns the 0/1 factors
// (x's dtype) the chunk's state terms take, from starts [B, 1, N, C] (1 at a document's first token).
//
// With s_r the number of starts in the chunk up to r (s = 0: the document the incoming state belongs
// to): pairs (r, i) count only where s_r = s_i, which makes Gamma, the scores and the WY system block
// diagonal by document, the products over (i, r] never crossing a start; headKeep [B, 1, N, C] = [s_r =
// 0] removes the incoming state from tokens after a start (in O and in W); tailKeep [B, 1, N, C] =
// [s_r = s_C] keeps only the last document's writes in the outgoing state, and totalKeep [B, 1, N, 1, 1]
// = [s_C = 0] keeps the decayed incoming state only when the chunk has no start.
func (d *chunkDecay) withDocuments(starts *Node) (headKeep, tailKeep, totalKeep *Node) {
	chunk := starts.Shape().Dimensions[3]
	seg := CumSum(starts, -1) // small integers, exact in any float dtype
	same := Equal(InsertAxes(seg, -1), InsertAxes(seg, -2))
	d.lower, d.strict = And(d.lower, same), And(d.strict, same)
	zero := ZerosLike(seg)
	segLast := SliceAxis(seg, -1, AxisElem(chunk-1)) // [B, 1, N, 1]
	asFloat := func(b *Node) *Node { return ConvertDType(b, starts.DType()) }
	headKeep = asFloat(Equal(seg, zero))
	tailKeep = asFloat(Equal(seg, BroadcastToDims(segLast, seg.Shape().Dimensions...)))
	totalKeep = InsertAxes(asFloat(Equal(segLast, ZerosLike(segLast))), -1)
	return headKeep, tailKeep, totalKeep
}

// scaleRows returns x [..., C, D] with row r multiplied by f [..., C] (x itself when f is nil).
func (d chunkDecay) scaleRows(x, f *Node) *Node {
	if f == nil {
		return x
	}
	return Mul(x, InsertAxes(f, -1))
}

// mask returns scores [B, H, N, C, C] .* Gamma: causal (i <= r) and decayed.
func (d chunkDecay) mask(scores *Node) *Node {
	if d.gamma != nil {
		return Mul(scores, d.gamma)
	}
	return Where(d.lower, scores, ScalarZero(scores.Graph(), scores.DType()))
}

// strictMask returns x [B, H, N, C, C] .* Gamma strictly below the diagonal, 0 elsewhere.
func (d chunkDecay) strictMask(x *Node) *Node {
	if d.gamma != nil {
		x = Mul(x, d.gamma)
	}
	return Where(d.strict, x, ScalarZero(x.Graph(), x.DType()))
}

// pairDifferences returns d_ri = G_r - G_i [..., C, C] of G [..., C] as the product [G_r, 1] . [1, -G_i]:
// one rounding of the same difference, written at matmul speed (the Go backend's broadcast Sub of
// [.., C, 1] and [.., 1, C] ran at about 2.5 ns per element). Its gradient is written out,
// dG_r = sum_i v_ri - sum_i v_ir (autodiff of the product would transpose v).
func pairDifferences(cum *Node) *Node {
	rank := cum.Rank()
	return customGradient([]*Node{cum},
		func(in []*Node) *Node {
			ones := OnesLike(in[0])
			return layers.BatchedMatMulT(Stack([]*Node{in[0], ones}, -1), Stack([]*Node{ones, Neg(in[0])}, -1), rank-1)
		},
		func(v *Node) []*Node { return []*Node{Sub(ReduceSum(v, -1), ReduceSum(v, -2))} })
}
