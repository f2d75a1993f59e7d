package deltanet

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// chunkDecay holds the decay factors of every chunk and the causal masks, for tensors laid out
// [B, H, N, C, ...]. Without the gate (g = 0) every decay factor is 1 and the factors are nil.
type chunkDecay struct {
	lower  *Node // i <= r: bool [1, 1, 1, C, C], broadcast by Where
	strict *Node // i < r: bool [1, 1, 1, C, C]
	upper  *Node // i >= r: bool [1, 1, 1, C, C], the transposed causal mask
	gamma  *Node // Gamma_ri = exp(G_r - G_i) for i <= r, 0 above: [B, H, N, C, C]; nil without gate
	gammaT *Node // Gamma^T, computed (not transposed) for gradients
	head   *Node // exp(G_r): [B, H, N, C]
	tail   *Node // exp(G_C - G_r): [B, H, N, C]
	total  *Node // exp(G_C): [B, H, N, 1, 1]
}

// newChunkDecay computes the decay factors from the log-decays g [B, H, N, C] (nil: no gate) of the
// chunked x [B, H, N, C, ...] (which gives the graph, dtype and chunk length).
//
// G = cumsum(g) within each chunk; every factor is the exp of a difference G_r - G_i with i <= r, a sum
// of log-decays over (i, r], so for decays (g <= 0) nothing overflows and strong decay underflows to 0.
// The arguments above the diagonal (i > r, positive) are replaced by 0 before the exp, so they neither
// overflow nor leak NaN into the gradient. The Go backend's Exp is a SIMD kernel since compute v0.1.14,
// so the C*C exponentials per chunk cost less than building Gamma from products of alpha_t by
// log2(C) shift-and-multiply steps, whose shifts (slice + pad, and their gradients) were copies.
func newChunkDecay(x, g *Node) chunkDecay {
	graph := x.Graph()
	chunk := x.Shape().Dimensions[3]
	dims := shapes.Make(dtypes.Int32, 1, 1, 1, chunk, chunk)
	row, col := Iota(graph, dims, 3), Iota(graph, dims, 4)
	d := chunkDecay{lower: GreaterOrEqual(row, col), strict: GreaterThan(row, col), upper: LessOrEqual(row, col)}
	if g == nil {
		return d
	}
	cum := CumSum(g, -1)                                  // G: [B, H, N, C]
	last := SliceAxis(cum, -1, AxisElem(chunk-1))         // G_C: [B, H, N, 1]
	diff := Sub(InsertAxes(cum, -1), InsertAxes(cum, -2)) // G_r - G_i: [B, H, N, C, C]
	zero := ScalarZero(graph, x.DType())
	d.gamma = Where(d.lower, Exp(Where(d.lower, diff, zero)), zero)
	d.gammaT = Where(d.upper, Exp(Where(d.upper, Neg(diff), zero)), zero)
	d.head = Exp(cum)
	d.tail = Exp(Sub(last, cum))
	d.total = InsertAxes(Exp(last), -1)
	return d
}

// scaleRows returns x [..., C, D] with row r multiplied by f [..., C] (x itself when f is nil).
func (d chunkDecay) scaleRows(x, f *Node) *Node {
	if f == nil {
		return x
	}
	return Mul(x, InsertAxes(f, -1))
}

// maskT is mask for transposed scores [B, H, N, C(i), C(r)]: scores .* Gamma^T.
func (d chunkDecay) maskT(scoresT *Node) *Node {
	if d.gammaT != nil {
		return Mul(scoresT, d.gammaT)
	}
	return Where(d.upper, scoresT, ScalarZero(scoresT.Graph(), scoresT.DType()))
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
