package gla

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// SubChunk is the sub-chunk length c: within a chunk, the scores of a query and a key in the same
// sub-chunk are computed channel by channel (for the c (c + 1) / 2 pairs i <= r), and those across
// sub-chunks by one product through the sub-chunk's reference point. Chunks longer than SubChunk must be multiples of it.
const SubChunk = 16

// Chunked is the chunkwise-parallel form of Naive (same arguments and results, plus chunkSize C: at most
// SubChunk, or a multiple of it).
//
// Within a chunk (positions r, i = 1..C) with incoming state S and G_r = sum_{j<=r} gk_j (per channel,
// non-increasing):
//
//	O = (scale Q .* exp(G)) S + P V,  P_ri = scale sum_c q_r[c] k_i[c] exp(G_r[c] - G_i[c])  (i <= r)
//	S <- diag(exp(G_C)) S + (K .* exp(G_C - G))^T V
//
// (Yang et al. 2024, sec. 4.2-4.3). Every exp has a non-positive argument, including those of P: for r
// and i in different sub-chunks, exp(G_r - G_i) = exp(G_r - G_n) exp(G_n - G_i) with G_n the cumulative
// gate at the first token of r's sub-chunk (i before it, r at or after it), and within a sub-chunk the
// difference is taken per channel before the exp. So nothing overflows in float32 whatever the decay;
// strong decay underflows to 0, which is the value.
func Chunked(q, k, v, gk, h0 *Node, scale float64, chunkSize int) (o, ht *Node) {
	h0 = checkInputs("gla.Chunked", q, k, v, gk, h0)
	if chunkSize < 1 || (chunkSize > SubChunk && chunkSize%SubChunk != 0) {
		panic(fmt.Errorf("gla.Chunked: chunkSize = %d: want 1..%d or a multiple of %d", chunkSize, SubChunk, SubChunk))
	}
	o, ht = chunked(headMajor(q), headMajor(k), headMajor(v), headMajor(gk), h0, scale, chunkSize)
	return headMajor(o), ht
}

// chunked is Chunked on head-major tensors: q, k, gk [B, H, T, K], v [B, H, T, V].
func chunked(q, k, v, gk, h0 *Node, scale float64, chunkSize int) (o, ht *Node) {
	dims := q.Shape().Dimensions
	batch, heads, time := dims[0], dims[1], dims[2]
	numChunks := (time + chunkSize - 1) / chunkSize
	chunks := func(x *Node) *Node { // [B, H, T, D] -> [B, H, N, C, D]; padded steps (gk = k = v = 0) leave S alone
		if pad := numChunks*chunkSize - time; pad > 0 {
			padding := make([]PadAxis, x.Rank())
			padding[2] = PadAxis{End: pad}
			x = Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
		}
		return Reshape(x, batch, heads, numChunks, chunkSize, x.Shape().Dimensions[3])
	}
	qc, kc, vc := chunks(MulScalar(q, scale)), chunks(k), chunks(v)
	cum := CumSum(chunks(gk), 3)                     // G: [B, H, N, C, K]
	last := SliceAxis(cum, 3, AxisElem(chunkSize-1)) // G_C: [B, H, N, 1, K]
	qHead := Mul(qc, Exp(cum))                       // q decayed since the chunk start
	kTail := Mul(kc, Exp(Sub(last, cum)))            // k decayed until the chunk end
	total := Reshape(Exp(last), batch, heads, numChunks, -1, 1)

	// Only the state crosses chunks: ceil(T/C) unrolled steps.
	kParts, vParts, totalParts := layers.SplitAxis(kTail, 2), layers.SplitAxis(vc, 2), layers.SplitAxis(total, 2)
	states := make([]*Node, numChunks) // S entering each chunk: [B, H, K, V]
	state := h0
	for n := range numChunks {
		states[n] = state
		write := DotGeneral(kParts[n], []int{2}, []int{0, 1}, vParts[n], []int{2}, []int{0, 1}) // K^T V: [B, H, K, V]
		state = Add(Mul(state, totalParts[n]), write)
	}
	stateStack := layers.StackAxis(states, 2) // [B, H, N, K, V]

	batchAxes := []int{0, 1, 2}
	out := DotGeneral(qHead, []int{4}, batchAxes, stateStack, []int{3}, batchAxes) // [B, H, N, C, V]
	scores := intraScores(qc, kc, cum)                                             // [B, H, N, C, C]
	out = Add(out, DotGeneral(scores, []int{4}, batchAxes, vc, []int{3}, batchAxes))
	out = Reshape(out, batch, heads, numChunks*chunkSize, -1)
	if numChunks*chunkSize != time {
		out = SliceAxis(out, 2, AxisRange(0, time))
	}
	return out, state
}

// intraScores returns P_ri = sum_c q_r[c] k_i[c] exp(G_r[c] - G_i[c]) for i <= r, 0 above, for q, k, G
// [B, H, N, C, K] (q already scaled): [B, H, N, C, C].
func intraScores(q, k, cum *Node) *Node {
	dims := q.Shape().Dimensions
	batch, heads, numChunks, chunk, width := dims[0], dims[1], dims[2], dims[3], dims[4]
	sub := min(chunk, SubChunk)
	numSub := chunk / sub
	subs := func(x *Node) *Node { return Reshape(x, batch, heads, numChunks, numSub, sub, width) }
	qs, ks, gs := subs(q), subs(k), subs(cum) // [B, H, N, S, c, K]
	g := q.Graph()
	diag := subChunkScores(qs, ks, gs) // [B, H, N, S, c(r), c(i)]
	if numSub == 1 {
		return Reshape(diag, batch, heads, numChunks, chunk, chunk)
	}
	// Place each sub-chunk's block on the diagonal: [B, H, N, S, c, S, c].
	eye := Reshape(ConvertDType(Equal(Iota(g, shapes.Make(dtypes.Int32, numSub, numSub), 0),
		Iota(g, shapes.Make(dtypes.Int32, numSub, numSub), 1)), q.DType()), 1, 1, 1, numSub, 1, numSub, 1)
	scores := Mul(InsertAxes(diag, 5), eye)

	// Across sub-chunks: through the cumulative gate G_n at the first token of the query's sub-chunk a,
	// q_r exp(G_r - G_n) and k_i exp(G_n - G_i), keys i only from sub-chunks before a.
	ref := SliceAxis(gs, 4, AxisElem(0))                            // G_n: [B, H, N, S, 1, K]
	qRef := Mul(qs, Exp(Sub(gs, ref)))                              // [B, H, N, S, c, K]
	before := maskBias(earlierSubChunks(g, numSub, sub), q.DType()) // [1, 1, 1, S, C, 1]: 0 where i < a c
	kDiff := Sub(ref, InsertAxes(cum, 3))                           // G_n - G_i: [B, H, N, S, C, K]
	kDecay := Exp(Add(kDiff, before))
	kRef := Mul(kDecay, InsertAxes(k, 3))                                                     // [B, H, N, S, C, K]
	cross := DotGeneral(qRef, []int{5}, []int{0, 1, 2, 3}, kRef, []int{5}, []int{0, 1, 2, 3}) // [B, H, N, S, c, C]
	scores = Add(Reshape(scores, batch, heads, numChunks, numSub, sub, chunk), cross)
	return Reshape(scores, batch, heads, numChunks, chunk, chunk)
}

// subChunkScores returns the scores of the pairs r >= i of each sub-chunk, sum_c q_r[c] k_i[c] exp(G_r[c]
// - G_i[c]), 0 above the diagonal, for q, k, G [..., c, K]: [..., c(r), c(i)].
//
// Only the c (c + 1) / 2 pairs i <= r are computed, all exps with non-positive arguments, so nothing is
// masked: with the positions first ([c, M, K], M the leading axes), one Gather per operand lays every
// pair's rows out as [pairs, M, K], where the differences, exps and products are elementwise on equal
// shapes (the Go backend's vectorised kernels; broadcasting G_r against G_i over [c, c, K] took its
// generic element-by-element path), then one Gather places the pair sums in the [c, c] matrices, the
// pairs above the diagonal reading a row of zeros.
func subChunkScores(q, k, cum *Node) *Node {
	dims := q.Shape().Dimensions
	rank := len(dims)
	sub, width := dims[rank-2], dims[rank-1]
	lead := dims[:rank-2]
	rows := 1
	for _, d := range lead {
		rows *= d
	}
	positionsFirst := func(x *Node) *Node { return TransposeAllAxes(Reshape(x, rows, sub, width), 1, 0, 2) } // [c, M, K]
	qp, kp, gp := positionsFirst(q), positionsFirst(k), positionsFirst(cum)

	pairs := sub * (sub + 1) / 2
	var query, key []int32             // the pairs (r, i), i <= r, in row-major order
	place := make([]int32, 0, sub*sub) // entry (r, i) of the [c, c] matrix: its pair, or the zero row
	for r := range sub {
		for i := range sub {
			if i > r {
				place = append(place, int32(pairs))
				continue
			}
			place = append(place, int32(len(query)))
			query, key = append(query, int32(r)), append(key, int32(i))
		}
	}
	g := q.Graph()
	at := func(x *Node, positions []int32, sorted bool) *Node { // [c, M, K] -> [pairs, M, K]
		return Gather(x, Reshape(Const(g, positions), len(positions), 1), sorted)
	}
	decay := Exp(Sub(at(gp, query, true), at(gp, key, false)))                      // G non-increasing: arguments <= 0
	sums := ReduceSum(Mul(Mul(at(qp, query, true), at(kp, key, false)), decay), -1) // [pairs, M]
	sums = Concatenate([]*Node{sums, Zeros(g, shapes.Make(q.DType(), 1, rows))}, 0)
	scores := Gather(sums, Reshape(Const(g, place), sub*sub, 1), false) // [c*c, M]
	scores = TransposeAllAxes(scores, 1, 0)                             // [M, c*c]
	return Reshape(scores, append(append([]int{}, lead...), sub, sub)...)
}

// earlierSubChunks is i < a*sub over [1, 1, 1, S(a), S*sub(i), 1]: key i lies in a sub-chunk before a.
func earlierSubChunks(g *Graph, numSub, sub int) *Node {
	shape := shapes.Make(dtypes.Int32, 1, 1, 1, numSub, numSub*sub, 1)
	return LessThan(Iota(g, shape, 4), MulScalar(Iota(g, shape, 3), sub))
}

// maskBias is 0 where mask holds and -1e30 elsewhere: added to an exp's argument it masks the exp to
// exactly 0 (and its gradient with it) in float32 and float64, the arguments being finite log-decay
// differences. (A Where with a broadcast mask on the [.., c, c, K] decays took the Go backend's generic
// element-by-element path: 70% of the forward pass; a broadcast Add is vectorised.)
func maskBias(mask *Node, dtype dtypes.DType) *Node {
	g := mask.Graph()
	return Where(mask, ScalarZero(g, dtype), Scalar(g, dtype, -1e30))
}

// headMajor swaps the time and head axes of [B, T, H, D] (or back).
func headMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }
