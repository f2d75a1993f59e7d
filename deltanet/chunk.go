package deltanet

import (
	"fmt"
	"github.com/engramlx/engram/layers"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Chunked is the chunkwise-parallel form of Naive (same arguments and results, plus chunkSize C).
//
// Within a chunk (positions r, i = 1..C) with incoming state S:
//
//	G_r = sum_{i<=r} g_i;  Gamma_ri = exp(G_r - G_i) for i <= r, else 0
//	A = strictly-lower(diag(beta) (Gamma .* K K^T));  T = (I + A)^-1
//	U = T diag(beta) V;  W = T diag(beta) (K .* exp(G))
//	V' = U - W S
//	O = scale (Q .* exp(G)) S + (scale Q K^T .* Gamma) V'
//	S <- exp(G_C) S + (K .* exp(G_C - G))^T V'
//
// (the WY form of the delta rule, Yang et al. 2025, sec. 3.3). Without the delta rule V' = V.
//
// Chunked converts to the head-major layout once and runs ChunkedHeadMajor; callers that already hold
// head-major tensors (the layer) call ChunkedHeadMajor directly and skip both transposes.
func Chunked(q, k, v, beta, g, h0 *Node, scale float64, chunkSize int, opts Options) (o, ht *Node) {
	return ChunkedDocuments(q, k, v, beta, g, h0, nil, scale, chunkSize, opts)
}

// ChunkedDocuments is Chunked over rows that pack several documents, docStart [B, T] as in
// NaiveDocuments (nil: Chunked). Within a chunk the decay, attention and WY matrices keep only pairs of
// tokens of one document, tokens after a start in the chunk do not read the incoming state, and the
// outgoing state is built from the chunk's last document (see newChunkDecay): the masks are exact 0/1
// factors, so no decay is pushed to extreme values and float32 keeps its precision.
func ChunkedDocuments(q, k, v, beta, g, h0, docStart *Node, scale float64, chunkSize int, opts Options) (o, ht *Node) {
	h0 = checkInputs("deltanet.Chunked", q, k, v, beta, g, h0)
	checkDocStart("deltanet.Chunked", q, docStart)
	o, ht = chunked(headMajor(q), headMajor(k), headMajor(v), headMajorScalars(beta), headMajorScalars(g),
		h0, docStart, scale, chunkSize, opts, "deltanet.Chunked")
	return headMajor(o), ht
}

// ChunkedHeadMajor is Chunked on head-major tensors: q, k [B, H, T, K], v [B, H, T, V], beta, g [B, H, T],
// h0 [B, H, K, V] (nil = zeros) -> o [B, H, T, V], ht [B, H, K, V].
//
// Layout: every tensor is [B, H, N, C, ...] (a free reshape of [B, H, T, ...] when C divides T; else one
// zero pad of time at entry, g = beta = k = v = q = 0 steps that leave S unchanged), so every product
// is a batched matmul over the leading [B, H, N] axes with its contracting axis where the Go backend's
// kernels read it, and nothing is transposed inside the recurrence. Everything but the state recurrence
// (decays, the WY factors with their (I + A)^-1, the q k^T scores) is computed for all chunks at once;
// only the ceil(T/C) state updates are unrolled at graph-build time (GoMLX has no differentiable loop).
func ChunkedHeadMajor(q, k, v, beta, g, h0 *Node, scale float64, chunkSize int, opts Options) (o, ht *Node) {
	return ChunkedHeadMajorDocuments(q, k, v, beta, g, h0, nil, scale, chunkSize, opts)
}

// ChunkedHeadMajorDocuments is ChunkedDocuments on head-major tensors; docStart stays [B, T].
func ChunkedHeadMajorDocuments(q, k, v, beta, g, h0, docStart *Node, scale float64, chunkSize int, opts Options) (o, ht *Node) {
	h0 = checkHeadMajorInputs("deltanet.ChunkedHeadMajor", q, k, v, beta, g, h0)
	if docStart != nil {
		checkDocStart("deltanet.ChunkedHeadMajor", TransposeAllAxes(q, 0, 2, 1, 3), docStart)
	}
	return chunked(q, k, v, beta, g, h0, docStart, scale, chunkSize, opts, "deltanet.ChunkedHeadMajor")
}

func chunked(q, k, v, beta, g, h0, docStart *Node, scale float64, chunkSize int, opts Options, op string) (o, ht *Node) {
	if chunkSize < 1 {
		panic(fmt.Errorf("%s: chunkSize must be >= 1, got %d", op, chunkSize))
	}
	dims := q.Shape().Dimensions
	batch, heads, time := dims[0], dims[1], dims[2]
	numChunks := (time + chunkSize - 1) / chunkSize
	chunks := func(x *Node) *Node { // [B, H, T, ...] -> [B, H, N, C, ...]
		if pad := numChunks*chunkSize - time; pad > 0 {
			padding := make([]PadAxis, x.Rank())
			padding[2] = PadAxis{End: pad}
			x = Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
		}
		return Reshape(x, append([]int{batch, x.Shape().Dimensions[1], numChunks, chunkSize}, x.Shape().Dimensions[3:]...)...)
	}
	qc, kc, vc, betac := chunks(q), chunks(k), chunks(v), chunks(beta)
	var gc *Node
	if opts.Gate {
		gc = chunks(g)
	}
	var startc *Node
	if docStart != nil {
		startc = chunks(Reshape(StopGradient(docStart), batch, 1, time)) // [B, 1, N, C]
	}
	decay := newChunkDecay(qc, gc, startc) // Gamma [B, H, N, C, C], exp(G) [B, H, N, C], ...

	// Every product goes through layers.Product(x, xT, y), whose gradient needs x^T: the transposes are taken
	// once here, on whole tensors, or computed as products (nodes used only by gradients are not
	// executed in forward-only graphs).
	// kT and qs are read by several products (and SplitShared): each goes through one identity.
	kTs := layers.Share(layers.TransposeLast(kc)) // [B, H, N, K, C]
	qss := layers.Share(MulScalar(qc, scale))
	kT, qs := kTs.Node(), qss.Node()
	qsT := layers.TransposeByProduct(qs) // for the gradients only

	u, w, wT := vc, (*Node)(nil), (*Node)(nil)
	if opts.Delta {
		u, w, wT = wyFactors(kc, kTs, vc, betac, decay)
	}
	// The state update S <- exp(G_C) S + K^T diag(exp(G_C - G)) V' scales the rows of V' by how much each
	// key's write has decayed by the end of its chunk (a row scaling is one of the Go backend's fast
	// broadcasts; scaling the columns of K^T is not).
	var uParts, wParts, wTParts, kTParts, kParts, tailParts, totalParts []*Node
	uParts, kTParts, kParts = layers.SplitAxis(u, 2), layers.SplitShared(kTs, 2), layers.GatherPieces(kc, 2)
	if opts.Delta {
		wParts, wTParts = layers.SplitAxis(w, 2), layers.GatherPieces(wT, 2)
	}
	if decay.total != nil {
		totalParts = layers.SplitAxis(decay.total, 2) // [B, H, 1, 1] each
		tailParts = layers.SplitAxis(decay.tail, 2)   // [B, H, C] each
	}
	states := make([]*Node, numChunks)    // S entering each chunk: [B, H, K, V]
	corrected := make([]*Node, numChunks) // V' of each chunk: [B, H, C, V]
	state := h0
	for n := range numChunks {
		states[n] = state
		vn := uParts[n]
		if opts.Delta {
			vn = Sub(vn, layers.Product(wParts[n], wTParts[n], state, 2)) // [B,H,C,K] x [B,H,K,V]
		}
		corrected[n] = vn
		if totalParts != nil {
			state = Mul(state, totalParts[n])
		}
		if tailParts != nil {
			vn = decay.scaleRows(vn, tailParts[n])
		}
		state = Add(state, layers.Product(kTParts[n], kParts[n], vn, 2)) // [B,H,K,C] x [B,H,C,V]
	}
	stateStack, vStack := layers.StackAxis(states, 2), layers.StackAxis(corrected, 2) // [B, H, N, K, V], [B, H, N, C, V]

	// Outputs of all chunks at once: the inter-chunk part from the incoming state, the intra-chunk part
	// from the corrected values.
	out := decay.scaleRows(layers.Product(qs, qsT, stateStack, 3, qss), decay.head) // diag(exp(G)) Q S
	// scale Q K^T .* Gamma [B, H, N, C, C], read by its product and its transpose (for the gradient).
	ss := layers.Share(decay.mask(layers.Product(qs, qsT, kT, 3, qss, kTs)))
	scores := ss.Node()
	out = Add(out, layers.Product(scores, layers.TransposeByProduct(scores), vStack, 3, ss))
	out = Reshape(out, batch, heads, numChunks*chunkSize, out.Shape().Dimensions[4])
	if numChunks*chunkSize != time {
		out = SliceAxis(out, 2, AxisRange(0, time))
	}
	return out, state
}

// wyFactors returns U = T diag(beta) V and W = T diag(beta) (K .* exp(G)), T = (I + A)^-1 with
// A = strictly-lower(diag(beta) (Gamma .* K K^T)), for every chunk at once: the WY representation of
// the product of the chunk's Householder-like transitions (I - beta_t k_t k_t^T). It also returns W^T,
// computed as a product, for the gradient of the recurrence.
func wyFactors(k *Node, kTs *layers.Shared, v, beta *Node, decay chunkDecay) (u, w, wT *Node) {
	kT := kTs.Node()
	betaCol := InsertAxes(beta, -1)
	gram := layers.Product(k, kT, kT, 3, kTs) // K K^T: [B, H, N, C, C]
	a := Mul(betaCol, decay.strictMask(gram))
	ts, tT := invertUnitLowerShared(a) // T, read by two products, and T^T for the gradients
	t := ts.Node()
	betaHead := beta
	if decay.head != nil {
		betaHead = Mul(beta, decay.head)
	}
	u = layers.Product(t, tT, Mul(betaCol, v), 3, ts)
	w = layers.Product(t, tT, decay.scaleRows(k, betaHead), 3, ts)
	wT = layers.BatchedMatMul(kT, decay.scaleRows(tT, betaHead), 3) // (T diag(beta exp(G)) K)^T = K^T diag(..) T^T
	return u, w, wT
}

// headMajor swaps the time and head axes of [B, T, H, D] (or back): the Go backend's fast transpose,
// which moves whole rows of D.
func headMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }

// headMajorScalars maps [B, T, H] to [B, H, T].
func headMajorScalars(x *Node) *Node {
	d := x.Shape().Dimensions
	return Reshape(headMajor(Reshape(x, d[0], d[1], d[2], 1)), d[0], d[2], d[1])
}

// checkHeadMajorInputs is checkInputs for the head-major layout.
func checkHeadMajorInputs(op string, q, k, v, beta, g, h0 *Node) *Node {
	qd, vd := q.Shape().Dimensions, v.Shape().Dimensions
	bad := len(qd) != 4 || len(vd) != 4 || !k.Shape().Equal(q.Shape()) ||
		vd[0] != qd[0] || vd[1] != qd[1] || vd[2] != qd[2] ||
		!beta.Shape().Equal(g.Shape()) || beta.Rank() != 3 ||
		beta.Shape().Dimensions[0] != qd[0] || beta.Shape().Dimensions[1] != qd[1] || beta.Shape().Dimensions[2] != qd[2]
	for _, x := range []*Node{k, v, beta, g} {
		bad = bad || x.DType() != q.DType()
	}
	if bad {
		panic(fmt.Errorf("%s: want q, k [B, H, T, K], v [B, H, T, V], beta, g [B, H, T] of one dtype; got q %s, k %s, v %s, beta %s, g %s",
			op, q.Shape(), k.Shape(), v.Shape(), beta.Shape(), g.Shape()))
	}
	if h0 == nil {
		return Zeros(q.Graph(), shapes.Make(q.DType(), qd[0], qd[1], qd[3], vd[3]))
	}
	hd := h0.Shape().Dimensions
	if len(hd) != 4 || hd[0] != qd[0] || hd[1] != qd[1] || hd[2] != qd[3] || hd[3] != vd[3] || h0.DType() != q.DType() {
		panic(fmt.Errorf("%s: want h0 [B, H, K, V] = [%d, %d, %d, %d] %s, got %s", op, qd[0], qd[1], qd[3], vd[3], q.DType(), h0.Shape()))
	}
	return h0
}
