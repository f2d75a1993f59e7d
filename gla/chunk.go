package gla

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// SubChunk is the sub-chunk length c: within a chunk, the scores of a query and a key in the same
// sub-chunk are computed channel by channel (for the c (c + 1) / 2 pairs i <= r), and those across
// sub-chunks by one product per pair of sub-chunks, through their first and last tokens' gates. Chunks
// longer than SubChunk must be multiples of it.
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
// and i in different sub-chunks, exp(G_r - G_i) = exp(G_r - G_n) exp(G_n - G_e) exp(G_e - G_i) with G_n
// the cumulative gate at the first token of r's sub-chunk and G_e at the last of i's (crossScores), and
// within a sub-chunk the difference is taken per channel, for i <= r only, before the exp (pairScores).
// So nothing overflows in float32 whatever the decay; strong decay underflows to 0, which is the value.
func Chunked(q, k, v, gk, h0 *Node, scale float64, chunkSize int) (o, ht *Node) {
	h0 = checkInputs("gla.Chunked", q, k, v, gk, h0)
	if chunkSize < 1 || (chunkSize > SubChunk && chunkSize%SubChunk != 0) {
		panic(fmt.Errorf("gla.Chunked: chunkSize = %d: want 1..%d or a multiple of %d", chunkSize, SubChunk, SubChunk))
	}
	o, ht = chunked(headMajor(q), headMajor(k), headMajor(v), headMajor(gk), h0, nil, scale, chunkSize)
	return headMajor(o), ht
}

// chunked is Chunked on head-major tensors: q, k, gk [B, H, T, K], v [B, H, T, V]; docStart [B, T]
// (nil: one document per row) adds the document masks of ChunkedDocuments.
func chunked(q, k, v, gk, h0, docStart *Node, scale float64, chunkSize int) (o, ht *Node) {
	dims := q.Shape().Dimensions
	batch, heads, time := dims[0], dims[1], dims[2]
	numChunks := (time + chunkSize - 1) / chunkSize
	chunks := func(x *Node) *Node { // [B, H', T, D] -> [B, H', N, C, D]; padded steps (gk = k = v = 0) leave S alone
		if pad := numChunks*chunkSize - time; pad > 0 {
			padding := make([]PadAxis, x.Rank())
			padding[2] = PadAxis{End: pad}
			x = Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
		}
		return Reshape(x, batch, x.Shape().Dimensions[1], numChunks, chunkSize, x.Shape().Dimensions[3])
	}
	qc, kc, vc := chunks(MulScalar(q, scale)), chunks(k), chunks(v)
	cum := CumSum(chunks(gk), 3)                     // G: [B, H, N, C, K]
	last := SliceAxis(cum, 3, AxisElem(chunkSize-1)) // G_C: [B, H, N, 1, K]
	qHead := Mul(qc, Exp(cum))                       // q decayed since the chunk start
	kTail := Mul(kc, Exp(Sub(last, cum)))            // k decayed until the chunk end
	total := Reshape(Exp(last), batch, heads, numChunks, -1, 1)
	var same *Node // with documents: 1 for the pairs (r, i) of one document, [B, 1, N, C, C]
	if docStart != nil {
		var headKeep, tailKeep, totalKeep *Node
		headKeep, tailKeep, totalKeep, same = documentMasks(chunks, docStart, q.DType())
		qHead, kTail, total = Mul(qHead, headKeep), Mul(kTail, tailKeep), Mul(total, totalKeep)
	}

	// Only the state crosses chunks: ceil(T/C) unrolled steps. Each chunk's write (K .* exp(G_C - G))^T V
	// does not depend on the state (no delta rule), so all of them are one batched product. The products
	// go through layers.Product, whose gradients need no transposes (autodiff's moved the last axis of
	// their adjoints: the Go backend's generic transpose, a fifth of the layer's fwd+bwd time).
	vs := layers.Share(vc) // read by two products
	values := vs.Node()
	writes := layers.Product(layers.TransposeLast(kTail), kTail, values, 3, vs) // [B, H, N, K, V]
	writeParts, totalParts := layers.SplitAxis(writes, 2), layers.SplitAxis(total, 2)
	states := make([]*Node, numChunks) // S entering each chunk: [B, H, K, V]
	state := h0
	for n := range numChunks {
		states[n] = state
		state = Add(Mul(state, totalParts[n]), writeParts[n])
	}
	stateStack := layers.StackAxis(states, 2) // [B, H, N, K, V]

	out := layers.Product(qHead, layers.TransposeByProduct(qHead), stateStack, 3) // [B, H, N, C, V]
	scores := intraScores(qc, kc, cum)                                            // [B, H, N, C, C]
	if same != nil {
		scores = Mul(scores, same)
	}
	out = Add(out, layers.Product(scores, layers.TransposeByProduct(scores), values, 3, vs))
	out = Reshape(out, batch, heads, numChunks*chunkSize, -1)
	if numChunks*chunkSize != time {
		out = SliceAxis(out, 2, AxisRange(0, time))
	}
	return out, state
}

// intraScores returns P_ri = sum_c q_r[c] k_i[c] exp(G_r[c] - G_i[c]) for i <= r, 0 above, for q, k, G
// [B, H, N, C, K] (q already scaled): [B, H, N, C, C].
//
// Everything works positions first, [c, S, M, K] (c the position in a sub-chunk, S the sub-chunks of a
// chunk, M = B H N), where every broadcast is over leading axes (the Go backend's vectorised kernels;
// a broadcast over a middle axis takes its generic element-by-element loop). The chunk's [C, C] matrix
// is assembled from S x S blocks of c x c: the diagonal blocks from pairScores, the blocks of sub-chunk
// pairs s < a from crossScores, zeros above.
func intraScores(q, k, cum *Node) *Node {
	dims := q.Shape().Dimensions
	batch, heads, numChunks, chunk, width := dims[0], dims[1], dims[2], dims[3], dims[4]
	sub := min(chunk, SubChunk)
	numSub, rows := chunk/sub, batch*heads*numChunks
	positionsFirst := func(x *Node) *Node { // [B, H, N, C, K] -> [c, S, M, K]
		return TransposeAllAxes(Reshape(x, rows, numSub, sub, width), 2, 1, 0, 3)
	}
	qp, kp, gp := positionsFirst(q), positionsFirst(k), positionsFirst(cum)
	flat := func(x *Node) *Node { return Reshape(x, sub, numSub*rows, width) }
	diag := Reshape(pairScores(flat(qp), flat(kp), flat(gp)), numSub, rows, sub, sub) // [S, M, c, c]
	if numSub == 1 {
		return Reshape(diag, batch, heads, numChunks, chunk, chunk)
	}
	cross, crossPairs := crossScores(qp, kp, gp) // [P, M, c, c]
	zero := Zeros(q.Graph(), shapes.Make(q.DType(), 1, rows, sub, sub))
	blocks := Concatenate([]*Node{cross, diag, zero}, 0) // cross blocks, diagonal blocks, zeros
	ids := make([]int32, 0, numSub*numSub)               // block (a, s) of the chunk's matrix
	for a := range numSub {
		for s := range numSub {
			switch {
			case s < a:
				ids = append(ids, int32(crossPairs[[2]int{a, s}]))
			case s == a:
				ids = append(ids, int32(len(crossPairs)+a))
			default:
				ids = append(ids, int32(len(crossPairs)+numSub))
			}
		}
	}
	scores := Gather(blocks, Reshape(Const(q.Graph(), ids), numSub*numSub, 1), false) // [S*S, M, c, c]
	scores = Reshape(scores, numSub, numSub, rows, sub, sub)
	scores = TransposeAllAxes(scores, 2, 0, 3, 1, 4) // [M, S(a), c(r), S(s), c(i)]
	return Reshape(scores, batch, heads, numChunks, chunk, chunk)
}

// crossScores returns the score blocks of the sub-chunk pairs s < a, [P, M, c(r), c(i)], from q, k, G
// [c, S, M, K] (positions first), and each pair's block index. Through G_n, the cumulative gate at the
// first token of a, and G_e, at the last token of s,
//
//	exp(G_r - G_i) = exp(G_r - G_n) exp(G_n - G_e) exp(G_e - G_i)
//
// with every exponent <= 0 (i <= e < n <= r): the queries decayed to their sub-chunk's start, the keys
// to their sub-chunk's end, and the per-channel decay between the two, taken per pair.
func crossScores(q, k, cum *Node) (*Node, map[[2]int]int) {
	dims := q.Shape().Dimensions
	sub, numSub := dims[0], dims[1]
	first := SliceAxis(cum, 0, AxisElem(0))    // G_n: [1, S, M, K]
	last := SliceAxis(cum, 0, AxisElem(sub-1)) // G_e: [1, S, M, K]
	qStart := Mul(q, Exp(Sub(cum, first)))     // q_r exp(G_r - G_n): [c, S, M, K]
	kEnd := Mul(k, Exp(Sub(last, cum)))        // k_i exp(G_e - G_i)
	index := map[[2]int]int{}
	var queries, keys []int
	for a := range numSub {
		for s := range a {
			index[[2]int{a, s}] = len(queries)
			queries, keys = append(queries, a), append(keys, s)
		}
	}
	g := q.Graph()
	pick := func(x *Node, subChunks []int) *Node { // [n, S, M, K] -> [n, P, M, K]
		n := x.Shape().Dimensions[0]
		indices := make([]int32, 0, n*len(subChunks)*2)
		for j := range n {
			for _, s := range subChunks {
				indices = append(indices, int32(j), int32(s))
			}
		}
		return Gather(x, Reshape(Const(g, indices), n, len(subChunks), 2), false)
	}
	between := Exp(Sub(pick(first, queries), pick(last, keys))) // exp(G_n - G_e): [1, P, M, K]
	qPairs := Mul(pick(qStart, queries), between)               // [c, P, M, K]
	kPairs := pick(kEnd, keys)
	return DotGeneral(qPairs, []int{3}, []int{1, 2}, kPairs, []int{3}, []int{1, 2}), index // [P, M, c, c]
}

// pairScores returns the scores of the pairs r >= i of each sub-chunk, sum_c q_r[c] k_i[c] exp(G_r[c]
// - G_i[c]), 0 above the diagonal, for q, k, G [c, R, K] (positions first): [R, c(r), c(i)].
//
// Only the c (c + 1) / 2 pairs i <= r are computed, all exps with non-positive arguments, so nothing is
// masked: one Gather per operand lays every pair's rows out as [pairs, R, K], where the differences,
// exps and products are elementwise on equal shapes (broadcasting G_r against G_i over [c, c, K] took
// the Go backend's generic element-by-element path), then one Gather places the pair sums in the
// [c, c] matrices, the pairs above the diagonal reading a row of zeros.
func pairScores(q, k, cum *Node) *Node {
	dims := q.Shape().Dimensions
	sub, rows := dims[0], dims[1]
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
	at := func(x *Node, positions []int32, sorted bool) *Node { // [c, R, K] -> [pairs, R, K]
		return Gather(x, Reshape(Const(g, positions), len(positions), 1), sorted)
	}
	decay := Exp(Sub(at(cum, query, true), at(cum, key, false)))                  // G non-increasing: arguments <= 0
	sums := ReduceSum(Mul(Mul(at(q, query, true), at(k, key, false)), decay), -1) // [pairs, R]
	sums = Concatenate([]*Node{sums, Zeros(g, shapes.Make(q.DType(), 1, rows))}, 0)
	scores := Gather(sums, Reshape(Const(g, place), sub*sub, 1), false) // [c*c, R]
	return Reshape(TransposeAllAxes(scores, 1, 0), rows, sub, sub)
}

// headMajor swaps the time and head axes of [B, T, H, D] (or back).
func headMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }
