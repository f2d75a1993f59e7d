package layers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// This file is the fast attention the Mixer runs; attention_ops.go keeps the plain dense masked form the
// tests compare it against.
//
// Layout: q, k, v are head-major [B, H, T, Dh] (leading batch axes, then time, then head width), which
// is the layout the Go backend's matmul kernels take without copying: with the batch axes leading, a
// product contracting the last axis of its left operand and either the last or the first non-batch axis
// of its right operand runs directly, anything else is transposed first. attendCore's forward and
// backward products are all of that form except two small [T, Dh] transposes in the backward pass; no
// [T, S] score matrix is ever transposed, and no mask is broadcast: the additive bias has leading axes
// of size 1, which the backends broadcast inside the Add.
//
// GoMLX's FusedScaledDotProductAttention was considered: the Go backend has its forward (causal mask
// aligned at the top-left corner, or an explicit [T, S] mask) but no fused backward, so its gradient
// falls back to the decomposed graph (scores, masked softmax through Exp, autodiff of two Einsums with
// their transposes) built next to it: that is the slow form this file replaces.

// causalBlock is the query block length of full causal attention from the start of a sequence: query
// block i attends to keys [0, (i+1) C) only, which skips the upper triangle of the score matrix (about
// half of the work at T >> C) at the price of more, smaller products.
var causalBlock = 256

// attnBlock is one product of blocked attention: the queries [qFrom, qTo) over the keys [0, kTo), with an
// additive bias (nil, or 0 where visible and maskedOut where not) broadcastable to [..., qTo-qFrom, kTo]
// with leading axes of size 1. The blocks of one call partition the queries, in order.
type attnBlock struct {
	qFrom, qTo, kTo int
	bias            *Node
}

// attend is softmax attention over the last two axes, the leading axes shared (batch, heads, ...):
// q [..., T, Dh] (already scaled), k, v [..., S, Dh], computed block by block. Returns [..., T, Dh].
//
// The gradient is written out rather than derived by autodiff (as flash attention's backward is): with
// P = softmax(S), dP = dO v^T, dS = P * (dP - rowsum(P * dP)), dq = dS k, dk = dS^T q, dv = P^T dO.
// (rowsum(dO * O) equals rowsum(P * dP) and is cheaper, but only up to rounding: this form keeps the
// gradient exactly zero where it must be, e.g. for a query that sees one key.) The forward runs on
// stopped inputs. The gradients enter through IdentityWithCustomGradient nodes on q, k and v: q's is added
// to the output as q - stop(q) (exactly zero), so it receives the upstream gradient dO and computes all
// three gradients; k's and v's are tied to the output by a zero scalar (sum(k - stop(k))), and, built
// before q's, are visited after it by the reverse pass, returning what q's computed. First-order
// gradients are exact; second-order gradients through it are not computed.
//
// Blocks are cut out with negative padding (block copies; the Go backend's Slice copies element by
// element), and their gradients put back with positive padding.
func attend(q, k, v *Node, blocks []attnBlock) *Node {
	rank := q.Rank()
	timeAxis := rank - 2
	batchAxes := make([]int, rank-2)
	for i := range batchAxes {
		batchAxes[i] = i
	}
	last, prev := []int{rank - 1}, []int{rank - 2}
	qs, ks, vs := StopGradient(q), StopGradient(k), StopGradient(v)
	keys := k.Shape().Dimensions[timeAxis]

	probs := make([]*Node, len(blocks))
	outs := make([]*Node, len(blocks))
	for i, b := range blocks {
		scores := DotGeneral(cropAxis(qs, timeAxis, b.qFrom, b.qTo), last, batchAxes, cropAxis(ks, timeAxis, 0, b.kTo), last, batchAxes)
		if b.bias != nil {
			scores = Add(scores, b.bias)
		}
		probs[i] = Softmax(scores, -1)
		outs[i] = DotGeneral(probs[i], last, batchAxes, cropAxis(vs, timeAxis, 0, b.kTo), prev, batchAxes) // [..., Tb, Dh]
	}
	out := outs[0]
	if len(outs) > 1 {
		out = Concatenate(outs, timeAxis)
	}

	var dk, dv *Node
	kIn := IdentityWithCustomGradient(k, func(_, _ *Node) *Node { return mustGradient(dk, "k") })
	vIn := IdentityWithCustomGradient(v, func(_, _ *Node) *Node { return mustGradient(dv, "v") })
	qIn := IdentityWithCustomGradient(q, func(_, dOut *Node) *Node {
		qT, dOutT := swapLast(qs), swapLast(dOut) // [..., Dh, T]
		var dqs []*Node
		var dkT, dvT *Node // [..., Dh, S], accumulated over blocks
		for i, b := range blocks {
			kb, vb := cropAxis(ks, timeAxis, 0, b.kTo), cropAxis(vs, timeAxis, 0, b.kTo)
			dProbs := DotGeneral(cropAxis(dOut, timeAxis, b.qFrom, b.qTo), last, batchAxes, vb, last, batchAxes) // [..., Tb, Sb]
			delta := ReduceAndKeep(Mul(probs[i], dProbs), ReduceSum, -1)
			dScores := Mul(probs[i], Sub(dProbs, delta))
			dqs = append(dqs, DotGeneral(dScores, last, batchAxes, kb, prev, batchAxes)) // [..., Tb, Dh]
			dkTb := padAxisTo(DotGeneral(cropAxis(qT, rank-1, b.qFrom, b.qTo), last, batchAxes, dScores, prev, batchAxes), rank-1, 0, keys)
			dvTb := padAxisTo(DotGeneral(cropAxis(dOutT, rank-1, b.qFrom, b.qTo), last, batchAxes, probs[i], prev, batchAxes), rank-1, 0, keys)
			if dkT == nil {
				dkT, dvT = dkTb, dvTb
			} else {
				dkT, dvT = Add(dkT, dkTb), Add(dvT, dvTb)
			}
		}
		dk, dv = swapLast(dkT), swapLast(dvT)
		if len(dqs) == 1 {
			return dqs[0]
		}
		return Concatenate(dqs, timeAxis)
	})
	zero := Add(ReduceAllSum(Sub(kIn, StopGradient(kIn))), ReduceAllSum(Sub(vIn, StopGradient(vIn))))
	return Add(Add(StopGradient(out), Sub(qIn, StopGradient(qIn))), zero)
}

func mustGradient(grad *Node, name string) *Node {
	if grad == nil {
		panic("layers.attend: the gradient of " + name + " was asked before the output's (reverse-pass order)")
	}
	return grad
}

// cropAxis returns x[from:to] along axis, by negative padding (no gradient: used on stopped nodes).
func cropAxis(x *Node, axis, from, to int) *Node {
	n := x.Shape().Dimensions[axis]
	if from == 0 && to == n {
		return x
	}
	padding := make([]PadAxis, x.Rank())
	padding[axis] = PadAxis{Start: -from, End: to - n}
	return Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
}

// padAxisTo places x at offset from along axis of a zero tensor of length total there.
func padAxisTo(x *Node, axis, from, total int) *Node {
	n := x.Shape().Dimensions[axis]
	if from == 0 && n == total {
		return x
	}
	padding := make([]PadAxis, x.Rank())
	padding[axis] = PadAxis{Start: from, End: total - from - n}
	return Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
}

// attendCore is attend in one block: all queries over all keys with bias.
func attendCore(q, k, v, bias *Node) *Node {
	rank := q.Rank()
	return attend(q, k, v, []attnBlock{{qFrom: 0, qTo: q.Shape().Dimensions[rank-2], kTo: k.Shape().Dimensions[rank-2], bias: bias}})
}

// swapLast transposes the last two axes: as the [0, 2, 1, 3] transpose of [N, A, B, 1], which the Go
// backend runs as block copies (a general permutation goes through its element-by-element iterator).
func swapLast(x *Node) *Node {
	dims := x.Shape().Dimensions
	rank := len(dims)
	outer := 1
	for _, d := range dims[:rank-2] {
		outer *= d
	}
	a, b := dims[rank-2], dims[rank-1]
	y := TransposeAllAxes(Reshape(x, outer, a, b, 1), 0, 2, 1, 3)
	out := append(append([]int{}, dims[:rank-2]...), b, a)
	return Reshape(y, out...)
}

// headMajor turns [B, T, H, Dh] into [B, H, T, Dh]; timeMajor is its inverse.
func headMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }
func timeMajor(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }

// causalBias is the additive mask [1, 1, T, S] of queries at positions queryStart + t over keys at
// keyStart + s (static offsets): 0 where keyStart + s <= queryStart + t, maskedOut elsewhere.
func causalBias(g *Graph, dtype dtypes.DType, time, keys, queryStart, keyStart int) *Node {
	queryPos := AddScalar(Iota(g, shapes.Make(dtypes.Int32, time, 1), 0), float64(queryStart))
	keyPos := AddScalar(Iota(g, shapes.Make(dtypes.Int32, 1, keys), 1), float64(keyStart))
	bias := Where(LessOrEqual(keyPos, queryPos), Zeros(g, shapes.Make(dtype, time, keys)), Scalar(g, dtype, maskedOut))
	return Reshape(bias, 1, 1, time, keys)
}

// kvPrefix is the keys and values of the persistent tokens, head-major [1, H, N_p, Dh]: keys that come
// before all others and that every query sees. A nil *kvPrefix is no prefix.
type kvPrefix struct{ k, v *Node }

func (p *kvPrefix) len() int {
	if p == nil {
		return 0
	}
	return p.k.Shape().Dimensions[2]
}

// prepend returns [prefix ; k] and [prefix ; v] along the key axis (the second last) of k, v
// [..., S, Dh], the prefix broadcast over their leading axes (batch, heads, blocks).
func (p *kvPrefix) prepend(k, v *Node) (*Node, *Node) {
	if p == nil {
		return k, v
	}
	dims := append([]int{}, k.Shape().Dimensions...)
	dims[len(dims)-2] = p.len()
	join := func(prefix, x *Node) *Node {
		for prefix.Rank() < x.Rank() { // [1, H, N_p, Dh] -> [1, H, 1, ..., N_p, Dh]
			prefix = InsertAxes(prefix, 2)
		}
		return Concatenate([]*Node{BroadcastToDims(prefix, dims...), x}, x.Rank()-2)
	}
	return join(p.k, k), join(p.v, v)
}

// padBias extends an additive mask [..., S] over the keys to [..., N_p + S] over [prefix ; keys]: the
// prefix's keys are visible (bias 0) to every query.
func (p *kvPrefix) padBias(bias *Node) *Node {
	if p == nil {
		return bias
	}
	padding := make([]PadAxis, bias.Rank())
	padding[bias.Rank()-1] = PadAxis{Start: p.len()}
	return Pad(bias, ScalarZero(bias.Graph(), bias.DType()), padding...)
}

// causalAttention is causal softmax attention of q, k, v [B, H, T, Dh] (q scaled) from the start of a
// sequence, in query blocks of causalBlock: block i sees keys [0, end of block i) only, and the prefix
// (nil: none). docID [B, T] (nil: one document) restricts each query to the keys of its own document.
func causalAttention(q, k, v, docID *Node, prefix *kvPrefix) *Node {
	g := q.Graph()
	time := q.Shape().Dimensions[2]
	k, v = prefix.prepend(k, v)
	var blocks []attnBlock
	for start := 0; start < time; start += causalBlock {
		end := min(start+causalBlock, time)
		bias := causalBias(g, q.DType(), end-start, end, start, 0)
		if docID != nil {
			bias = Add(bias, documentBias(SliceAxis(docID, 1, AxisRange(start, end)), SliceAxis(docID, 1, AxisRange(0, end)), q.DType()))
		}
		blocks = append(blocks, attnBlock{qFrom: start, qTo: end, kTo: prefix.len() + end, bias: prefix.padBias(bias)})
	}
	return attend(q, k, v, blocks)
}

// documentBias is the additive mask [B, 1, T, S] of queries of documents queryDoc [B, T] over keys of
// documents keyDoc [B, S]: 0 within a document, maskedOut across documents.
func documentBias(queryDoc, keyDoc *Node, dtype dtypes.DType) *Node {
	same := Equal(InsertAxes(queryDoc, -1), InsertAxes(keyDoc, 1)) // [B, T, S]
	bias := Where(same, ScalarZero(queryDoc.Graph(), dtype), Scalar(queryDoc.Graph(), dtype, maskedOut))
	return InsertAxes(bias, 1)
}

// cacheDocumentIDs returns the documents [B, S] of the S slots of an extended cache after the call's
// tokens were written at slots position..position+T-1 (writeCache): docID [B, T] there, 0 (the document
// the incoming state belongs to) in the slots before. nil when docID is nil. Slots after the call are
// never visible (causal), whatever they hold.
func cacheDocumentIDs(docID *Node, slots int, position *Node) *Node {
	if docID == nil {
		return nil
	}
	g := docID.Graph()
	batch := docID.Shape().Dimensions[0]
	zero := ScalarZero(g, dtypes.Int32)
	return DynamicUpdateSlice(Zeros(g, shapes.Make(docID.DType(), batch, slots)), docID, []*Node{zero, ConvertDType(position, dtypes.Int32)})
}

// cachedAttention is attention of q [B, H, T, Dh] at absolute positions p..p+T-1 (p = position, scalar
// int32) over keys and values [B, H, S, Dh] held in absolute slots 0..S-1: a query sees the slots at or
// before its position. Queries go in blocks of causalBlock, which bounds the score matrices alive at once
// (a streamed segment of 512 queries over a 4K cache).
//
// keyDoc [B, S] (nil: one document) gives each slot's document (cacheDocumentIDs); a query then also
// needs its own document, read from the slots it was written to. Every query also sees the prefix (nil:
// none).
func cachedAttention(q, k, v, position, keyDoc *Node, prefix *kvPrefix) *Node {
	g := q.Graph()
	time, keys := q.Shape().Dimensions[2], k.Shape().Dimensions[2]
	k, v = prefix.prepend(k, v)
	keyPos := Iota(g, shapes.Make(dtypes.Int32, 1, keys), 1)
	var blocks []attnBlock
	for start := 0; start < time; start += causalBlock {
		end := min(start+causalBlock, time)
		queryPos := Add(AddScalar(Iota(g, shapes.Make(dtypes.Int32, end-start, 1), 0), float64(start)), position)
		bias := Where(LessOrEqual(keyPos, queryPos), Zeros(g, shapes.Make(q.DType(), end-start, keys)), Scalar(g, q.DType(), maskedOut))
		bias = Reshape(bias, 1, 1, end-start, keys)
		if keyDoc != nil {
			queryDoc := Gather(TransposeAllAxes(keyDoc, 1, 0), Reshape(queryPos, end-start, 1)) // [Tb, B]
			bias = Add(bias, documentBias(TransposeAllAxes(queryDoc, 1, 0), keyDoc, q.DType()))
		}
		blocks = append(blocks, attnBlock{qFrom: start, qTo: end, kTo: prefix.len() + keys, bias: prefix.padBias(bias)})
	}
	return attend(q, k, v, blocks)
}

// writeCache writes new [B, T, H, Dh] into cache [B, L, H, Dh] at slots position..position+T-1 with
// DynamicUpdateSlice; slots past L are dropped (the caller reports streams longer than the cache). It
// returns the cache extended by T slots (so the write never clamps; the extra slots are zero or the
// dropped tail, at positions no query before them sees) and the next state, its first L slots.
//
// The Go backend has DynamicUpdateSlice but not DynamicSlice, which GoMLX's gradient of
// DynamicUpdateSlice uses for the update; so the gradient is given here (packed as in attendCore): the
// cache's is the upstream gradient with the written slots zeroed, the update's those slots, gathered.
func writeCache(cache, new, position *Node) (extended, next *Node) {
	g := cache.Graph()
	length, time := cache.Shape().Dimensions[1], new.Shape().Dimensions[1]
	zero := ScalarZero(g, dtypes.Int32)
	pos := ConvertDType(position, dtypes.Int32)
	starts := []*Node{zero, pos, zero, zero}
	padded := PadTime(cache, time)
	value := DynamicUpdateSlice(StopGradient(padded), StopGradient(new), starts)

	np, nn := padded.Shape().Size(), new.Shape().Size()
	dims := padded.Shape().Dimensions
	packed := Concatenate([]*Node{Reshape(padded, np), Reshape(new, nn)}, 0)
	packed = IdentityWithCustomGradient(packed, func(_, adjoint *Node) *Node {
		dExtended := Reshape(Slice(adjoint, AxisRange(0, np)), dims...)
		dPadded := DynamicUpdateSlice(dExtended, ZerosLike(new), starts)
		slots := Reshape(Add(Iota(g, shapes.Make(dtypes.Int32, time), 0), pos), time, 1)
		dNew := TransposeAllAxes(Gather(TransposeAllAxes(dExtended, 1, 0, 2, 3), slots), 1, 0, 2, 3)
		return Concatenate([]*Node{Reshape(dPadded, np), Reshape(dNew, nn)}, 0)
	})
	link := Reshape(Slice(packed, AxisRange(0, np)), dims...)
	extended = Add(value, Sub(link, StopGradient(link)))
	return extended, SliceAxis(extended, 1, AxisRange(0, length))
}

// slidingWindowAttention is sliding-window attention in blocks of W queries: block n's queries only
// reach keys of blocks n-1 and n of [cache ; x], so the cost is 2 T W per head instead of T^2.
//
// q, k, v [B, H, T, Dh] (q scaled); kCache, vCache [B, H, W, Dh] hold the W tokens before x (positions
// p-W..p-1; those below 0 are masked). docID [B, T] (nil: one document) restricts each query to the
// keys of its own document, the cached keys counting as document 0. Each block's keys start with the
// prefix (nil: none), which every query sees.
func slidingWindowAttention(q, k, v, kCache, vCache, position *Node, window int, docID *Node, prefix *kvPrefix) *Node {
	g := q.Graph()
	dims := q.Shape().Dimensions
	batch, heads, time, headDim := dims[0], dims[1], dims[2], dims[3]
	numBlocks := (time + window - 1) / window
	padTo := func(x *Node, length int) *Node {
		n := length - x.Shape().Dimensions[2]
		if n == 0 {
			return x
		}
		return Pad(x, ScalarZero(g, x.DType()), PadAxis{}, PadAxis{}, PadAxis{End: n}, PadAxis{})
	}
	pairBlocks := func(cache, x *Node) *Node {
		all := padTo(Concatenate([]*Node{cache, x}, 2), (numBlocks+1)*window)
		blocks := Reshape(all, batch, heads, numBlocks+1, window, headDim)
		return Concatenate([]*Node{
			SliceAxis(blocks, 2, AxisRange(0, numBlocks)),
			SliceAxis(blocks, 2, AxisRange(1, numBlocks+1)),
		}, 3) // [B, H, N, 2W, Dh]
	}
	kBlocks, vBlocks := pairBlocks(kCache, k), pairBlocks(vCache, v)
	qBlocks := Reshape(padTo(q, numBlocks*window), batch, heads, numBlocks, window, headDim)

	// Query i of block n is at p + nW + i; key s of its pair at p + nW + s - W.
	i := Iota(g, shapes.Make(dtypes.Int32, 1, window, 1), 1)
	s := Iota(g, shapes.Make(dtypes.Int32, 1, 1, 2*window), 2)
	n := Iota(g, shapes.Make(dtypes.Int32, numBlocks, 1, 1), 0)
	keyPos := Add(Add(MulScalar(n, float64(window)), AddScalar(s, float64(-window))), position)
	visible := And(And(GreaterThan(s, i), LessOrEqual(s, AddScalar(i, float64(window)))),
		GreaterOrEqual(keyPos, ScalarZero(g, dtypes.Int32))) // [N, W, 2W]
	bias := Where(visible, Zeros(g, shapes.Make(q.DType(), numBlocks, window, 2*window)), Scalar(g, q.DType(), maskedOut))
	bias = Reshape(bias, 1, 1, numBlocks, window, 2*window)
	if docID != nil {
		// The documents of the queries [B, N, W] and of each block's key pair [B, N, 2W], cut as the keys are.
		ids := func(x *Node, length int) *Node { // [B, T'] -> [B, 1, T', 1]: the time axis where padTo wants it
			return padTo(Reshape(x, batch, 1, x.Shape().Dimensions[1], 1), length)
		}
		withCache := Concatenate([]*Node{Zeros(g, shapes.Make(docID.DType(), batch, window)), docID}, 1)
		keyDoc := Reshape(ids(withCache, (numBlocks+1)*window), batch, numBlocks+1, window)
		keyDoc = Concatenate([]*Node{SliceAxis(keyDoc, 1, AxisRange(0, numBlocks)), SliceAxis(keyDoc, 1, AxisRange(1, numBlocks+1))}, 2)
		queryDoc := Reshape(ids(docID, numBlocks*window), batch, numBlocks, window)
		same := Equal(InsertAxes(queryDoc, -1), InsertAxes(keyDoc, 2)) // [B, N, W, 2W]
		docBias := Where(same, ScalarZero(g, q.DType()), Scalar(g, q.DType(), maskedOut))
		bias = Add(bias, InsertAxes(docBias, 1))
	}
	kBlocks, vBlocks = prefix.prepend(kBlocks, vBlocks)
	out := attendCore(qBlocks, kBlocks, vBlocks, prefix.padBias(bias))
	return SliceAxis(Reshape(out, batch, heads, numBlocks*window, headDim), 2, AxisRange(0, time))
}

// ropeHeadMajor is RoPE (rope.go) on head-major x [B, H, T, Dh]: x * cos + rotate(x) * sin, where
// rotate(x) = (-x2, x1) is a product with a constant signed permutation (exact) and cos, sin [1, 1, T, Dh]
// broadcast over the leading axes inside the backends' elementwise kernels.
func ropeHeadMajor(x *Node, offset *Node, base float64) *Node {
	dims := x.Shape().Dimensions
	time, headDim := dims[2], dims[3]
	cos, sin := ropeAngles(x, time, headDim, offset, base)
	cosFull := Reshape(Concatenate([]*Node{cos, cos}, 1), 1, 1, time, headDim)
	sinFull := Reshape(Concatenate([]*Node{Neg(sin), sin}, 1), 1, 1, time, headDim)
	return rotateHeadMajor(x, cosFull, sinFull)
}

// ropeHeadMajorAt is ropeHeadMajor at per-row positions [B, T] (int32; documentPositions): cos and sin
// [B, 1, T, Dh], broadcast over the heads.
func ropeHeadMajorAt(x *Node, positions *Node, base float64) *Node {
	dims := x.Shape().Dimensions
	batch, time, headDim := dims[0], dims[2], dims[3]
	cos, sin := ropeAnglesAt(x, headDim, positions, base)
	cosFull := Reshape(Concatenate([]*Node{cos, cos}, 2), batch, 1, time, headDim)
	sinFull := Reshape(Concatenate([]*Node{Neg(sin), sin}, 2), batch, 1, time, headDim)
	return rotateHeadMajor(x, cosFull, sinFull)
}

// rotateHeadMajor is x * cosFull + rotate(x) * sinFull for head-major x [B, H, T, Dh] and cosFull,
// sinFull broadcastable to it (the angles duplicated over both halves, sin negated on the first).
func rotateHeadMajor(x, cosFull, sinFull *Node) *Node {
	headDim := x.Shape().Dimensions[3]
	g, half := x.Graph(), headDim/2
	rotation := make([][]float64, headDim) // rotate(x)[k] = sum_j x[j] R[j][k]
	for j := range rotation {
		rotation[j] = make([]float64, headDim)
	}
	for k := 0; k < half; k++ {
		rotation[k+half][k] = 1 // out[k] = x2[k] (times -sin)
		rotation[k][k+half] = 1 // out[k+half] = x1[k] (times sin)
	}
	r := ConvertDType(Const(g, rotation), x.DType())
	rotated := DotGeneral(x, []int{3}, nil, r, []int{0}, nil)
	return Add(Mul(x, cosFull), Mul(rotated, sinFull))
}
