package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Document starts in the titans_pytorch mode (TTTBatch 0 only). A document's chunks are cut every C
// tokens from its first token; a complete chunk writes at its last token e (the pooled gates of its C
// tokens, the sum of its tokens' gradients at the base weights), and token t reads the weights after
// every write of its document at or before t (the mode's one-token shift, counted on the document's
// grid). Two complete chunks ending within C tokens of each other would overlap, so a grid chunk of C
// tokens holds at most one write: the op walks the grid, and each token reads one of three weights (the
// grid chunk's start, after its write, or the initial weights of a document that started in it).

// chunkEnds is 1 [B, 1, T] where a complete chunk of a document ends: pos + 1 a positive multiple of c.
func chunkEnds(pos *Node, c int) *Node {
	next := OnePlus(pos)
	onGrid := Equal(ModScalar(next, float64(c)), ZerosLike(next))
	return ConvertDType(And(onGrid, GreaterOrEqual(next, Scalar(pos.Graph(), pos.DType(), float64(c)))), pos.DType())
}

// windowMeans is the mean of x [B, T, D] over the c tokens ending at each token, [B, T, D] (the pooled
// input of a chunk that ends there; tokens before the call count as zeros, which only matters where no
// chunk ends).
func windowMeans(x *Node, c int) *Node {
	sum := x
	for d := 1; d < c; d++ {
		sum = Add(sum, layers.CausalShift(x, d))
	}
	return DivScalar(sum, float64(c))
}

// ChunkedPyTorchDocuments is ChunkedPyTorch over rows packing documents, docStart [B, T] (1 at a
// document's first token, where the weights return to base and the momentum to zero). gates.Eta and
// gates.Alpha are per token [B, H, T]: the gates of the chunk that ends at the token (read only where one
// does). With TTTBatch Q > 0 a document's TTT batches are Q tokens from its first token (for tokens before
// the row's first start, from the call start, as ChunkedPyTorch cuts them) and take their gradients at
// the weights of the batch's start; a chunk lies in one batch, so a write's C tokens share one point.
// Valid must be nil. The final state is the one after the row's last token.
func ChunkedPyTorchDocuments(q, k, v *Node, gates Gates, st State, base []*Node, docStart *Node, cfg PyTorchConfig) (y *Node, final State) {
	checkTPDocuments("ChunkedPyTorchDocuments", q, k, v, gates, st, base, cfg)
	g := q.Graph()
	time, c := q.Shape().Dimensions[2], cfg.ChunkSize
	docs := newCallDocs(docStart, c)
	ends := chunkEnds(docs.pos, c)
	var ps, rs []*Node
	var theta *Node
	if cfg.TTTBatch == 0 { // every gradient at base: one pass
		ps, rs, _ = tpGradFactors(base, k, v, cfg.NormEps, cfg.Autodiff)
		theta, _ = clampTheta(gates.Theta, ps, rs, cfg.GradClamp)
	}
	w, s := append([]*Node(nil), st.W...), append([]*Node(nil), st.S...)
	batchStart := append([]*Node(nil), st.W...) // the point of the current TTT batch's gradients
	var ys []*Node
	for _, b := range chunkBounds(time, c) {
		part := func(x *Node, from int) *Node { return SliceAxis(x, 2, AxisRange(from, b[1])) }
		n := b[1] - b[0]
		d := newChunkDocs(part(docs.start, b[0]), part(docs.pos, b[0]), part(docs.bound, b[0]), c)
		sel := part(ends, b[0])                                                               // [B, 1, n], at most one 1
		pick := func(x *Node) *Node { return InsertAxes(ReduceSum(Mul(sel, x), -1), -1, -1) } // [B, H|1, 1, 1]
		// The writing document continues the chunk's incoming state, or started at its first token.
		continues := pick(d.keep)
		mix := func(a, b *Node, f *Node) *Node { return Add(Mul(f, a), Mul(OneMinus(f), b)) }
		// The write's gradient sum over its C tokens, which may begin in the previous grid chunk.
		lo := max(0, b[0]-c)
		at := Iota(g, shapes.Make(q.DType(), 1, 1, b[1]-lo), 2)
		endAt := ReduceAndKeep(Mul(sel, AddScalar(Iota(g, shapes.Make(q.DType(), 1, 1, n), 2), float64(b[0]-lo))), ReduceSum, -1)
		inWindow := And(GreaterThan(at, AddScalar(endAt, float64(-c))), LessOrEqual(at, endAt))
		wps, wrs, wTheta := ps, rs, theta
		if cfg.TTTBatch > 0 { // the window's tokens at their batch's start weights
			point := make([]*Node, len(w))
			for l := range w {
				point[l] = mix(batchStart[l], base[l], continues)
			}
			wps, wrs, _ = tpGradFactors(point, part(k, lo), part(v, lo), cfg.NormEps, cfg.Autodiff)
			wTheta, _ = clampTheta(part(gates.Theta, lo), wps, wrs, cfg.GradClamp)
		}
		windowPart := func(x *Node) *Node {
			if cfg.TTTBatch > 0 {
				return x
			}
			return part(x, lo)
		}
		coef := Mul(windowPart(wTheta), Mul(ConvertDType(inWindow, q.DType()), ReduceAndKeep(sel, ReduceSum, -1)))
		eta, keepGate := pick(part(gates.Eta, b[0])), OneMinus(pick(part(gates.Alpha, b[0])))
		after := make([]*Node, len(w))
		sAfter := make([]*Node, len(w))
		for l := range w {
			sum := tmm(Mul(windowPart(wps[l]), InsertAxes(coef, -1)), windowPart(wrs[l]))
			sAfter[l] = Sub(Mul(eta, Mul(continues, s[l])), sum)
			after[l] = Add(Mul(keepGate, mix(w[l], base[l], continues)), sAfter[l])
		}
		// Token t reads the weights after the write when it is in the writer's document at or after it.
		afterMask := Mul(CumSum(sel, -1), ReduceSum(Mul(d.same, InsertAxes(sel, -2)), -1)) // [B, 1, n]
		startMask := Mul(d.keep, OneMinus(afterMask))
		initMask := Mul(OneMinus(d.keep), OneMinus(afterMask))
		qc := part(q, b[0])
		tokens := func(mask *Node) *Node { return InsertAxes(mask, -1) }
		yc := Add(Add(Mul(tokens(startMask), ReadTP(w, qc, cfg.NormEps)), Mul(tokens(afterMask), ReadTP(after, qc, cfg.NormEps))),
			Mul(tokens(initMask), ReadTP(base, qc, cfg.NormEps)))
		ys = append(ys, yc)
		last := func(x *Node) *Node { return InsertAxes(SliceAxis(x, 2, AxisElem(n-1)), -1) } // [B, 1, 1, 1]
		wrote, kept := last(afterMask), last(startMask)
		if cfg.TTTBatch > 0 {
			// The batch in force after the chunk: a new one after a write that ends one, the writer's, the
			// incoming one, or a document's first.
			endAt := pick(part(docs.pos, b[0]))
			newBatch := ConvertDType(Equal(ModScalar(OnePlus(endAt), float64(cfg.TTTBatch)), ZerosLike(endAt)), q.DType())
			for l := range w {
				writer := mix(after[l], mix(batchStart[l], base[l], continues), newBatch)
				batchStart[l] = Add(Add(Mul(wrote, writer), Mul(kept, batchStart[l])), Mul(OneMinus(Add(wrote, kept)), base[l]))
			}
		}
		for l := range w {
			w[l] = Add(Add(Mul(wrote, after[l]), Mul(kept, w[l])), Mul(OneMinus(Add(wrote, kept)), base[l]))
			s[l] = Add(Mul(wrote, sAfter[l]), Mul(kept, s[l]))
		}
	}
	return concatTime(ys), State{W: w, S: s}
}

// NaivePyTorchDocuments is the token-by-token reference of ChunkedPyTorchDocuments: full per-token
// gradients (perTokenGradientsTP) at the base weights, or with TTTBatch > 0 at the weights of the token's
// batch start, summed into the current chunk's sum; at a start the weights return to base and the
// momentum and sum to zero; at a chunk's end it writes; then the token reads.
func NaivePyTorchDocuments(q, k, v *Node, gates Gates, st State, base []*Node, docStart *Node, cfg PyTorchConfig) (y *Node, final State) {
	checkTPDocuments("NaivePyTorchDocuments", q, k, v, gates, st, base, cfg)
	time, c := q.Shape().Dimensions[2], cfg.ChunkSize
	start := StopGradient(docStart)
	pos := docPositions(start)
	ends := chunkEnds(pos, c) // [B, T]
	var grads []*Node
	var theta *Node
	if cfg.TTTBatch == 0 {
		grads = perTokenGradientsTP(base, k, v, cfg.NormEps)
		theta = clampFullGradients(gates.Theta, grads, cfg.GradClamp)
	}
	batches := ConvertDType(Equal(ModScalar(pos, float64(max(cfg.TTTBatch, 1))), ZerosLike(pos)), pos.DType())
	w, s := append([]*Node(nil), st.W...), append([]*Node(nil), st.S...)
	point := append([]*Node(nil), st.W...)
	sum := make([]*Node, len(w))
	for l := range w {
		sum[l] = ZerosLike(w[l])
	}
	var ys []*Node
	for t := range time {
		row := func(x *Node) *Node { return Reshape(SliceAxis(x, 1, AxisElem(t)), -1, 1, 1, 1) } // [B, 1, 1, 1]
		gate := func(x *Node) *Node { return InsertAxes(SliceAxis(x, 2, AxisElem(t)), -1) }      // [B, H, 1, 1]
		token := func(x *Node) *Node { return SliceAxis(x, 2, AxisElem(t)) }
		isStart, isEnd, isBatch := row(start), row(ends), row(batches)
		for l := range w {
			w[l] = Add(Mul(isStart, base[l]), Mul(OneMinus(isStart), w[l]))
			s[l] = Mul(OneMinus(isStart), s[l])
			point[l] = Add(Mul(isBatch, w[l]), Mul(OneMinus(isBatch), point[l]))
		}
		g, th := grads, theta
		if cfg.TTTBatch > 0 {
			g = perTokenGradientsTP(point, token(k), token(v), cfg.NormEps)
			th = clampFullGradients(token(gates.Theta), g, cfg.GradClamp)
		} else {
			g = make([]*Node, len(grads))
			for l := range g {
				g[l] = SliceAxis(grads[l], 2, AxisElem(t))
			}
			th = token(theta)
		}
		for l := range w {
			u := Squeeze(g[l], 2)
			sum[l] = Add(Mul(OneMinus(isStart), sum[l]), Mul(InsertAxes(th, -1), u))
			sNew := Sub(Mul(gate(gates.Eta), s[l]), sum[l])
			wNew := Add(Mul(OneMinus(gate(gates.Alpha)), w[l]), sNew)
			s[l] = Add(Mul(isEnd, sNew), Mul(OneMinus(isEnd), s[l]))
			w[l] = Add(Mul(isEnd, wNew), Mul(OneMinus(isEnd), w[l]))
			sum[l] = Mul(OneMinus(isEnd), sum[l])
		}
		ys = append(ys, ReadTP(w, token(q), cfg.NormEps))
	}
	return concatTime(ys), State{W: w, S: s}
}

func checkTPDocuments(op string, q, k, v *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) {
	checkInputs(op, q, k, v, []*Node{gates.Theta, gates.Eta, gates.Alpha}, st)
	if cfg.ChunkSize < 1 || cfg.TTTBatch < 0 || cfg.TTTBatch%cfg.ChunkSize != 0 || cfg.Valid != nil {
		panic(fmt.Errorf("titans.%s: document starts need chunk size >= 1 (got %d), a ttt batch of 0 or a multiple of it (got %d) and no carried partial chunk", op, cfg.ChunkSize, cfg.TTTBatch))
	}
	if len(base) != len(st.W) {
		panic(fmt.Errorf("titans.%s: want %d base tensors, got %d", op, len(st.W), len(base)))
	}
}
