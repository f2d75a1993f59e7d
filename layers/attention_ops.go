package layers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// maskedOut is the score given to masked positions: exp of it underflows to exactly 0 in float32 and
// float64, and it stays finite so no NaN appears in gradients.
const maskedOut = -1e9

// denseAttention is softmax attention of q [B, T, H, Dh] (already scaled) over k, v [B, S, H, Dh].
//
// Query t sits at absolute position p + t (p = position, a scalar int32 node; nil means 0). Key i sits at
// keyOffset + i (nil means 0): 0 when keys are absolute cache slots or x itself from position 0, p - W
// when the keys are [last W tokens ; x]. A query sees the keys at absolute positions in
// (pos - window, pos] that are >= 0 (window = 0: no lower bound).
func denseAttention(q, k, v, position, keyOffset *Node, window int) *Node {
	g := q.Graph()
	time, keys := q.Shape().Dimensions[1], k.Shape().Dimensions[1]
	if position == nil {
		position = ScalarZero(g, dtypes.Int32)
	}
	queryPos := Add(Iota(g, shapes.Make(dtypes.Int32, time, 1), 0), position)
	keyPos := Iota(g, shapes.Make(dtypes.Int32, 1, keys), 1)
	if keyOffset != nil {
		keyPos = Add(keyPos, keyOffset)
	}
	visible := And(LessOrEqual(keyPos, queryPos), GreaterOrEqual(keyPos, ScalarZero(g, dtypes.Int32)))
	if window > 0 {
		visible = And(visible, GreaterThan(keyPos, AddScalar(queryPos, float64(-window))))
	}
	scores := Einsum("bthd,bshd->bhts", q, k)
	scores = Where(BroadcastToDims(Reshape(visible, 1, 1, time, keys), scores.Shape().Dimensions...), scores,
		Scalar(g, scores.DType(), maskedOut))
	return Einsum("bhts,bshd->bthd", SoftmaxLast(scores), v)
}

// SoftmaxLast is the softmax over the last axis whose gradient never evaluates Exp: GoMLX builds the
// gradient of its fused Softmax from the decomposed form, whose elementwise Exp runs in slow scalar code
// on the Go backend (half of an attention train step's time). The value is the fused softmax y; the
// gradient comes from the surrogate f(x) = s*x - s*sum(s*x), s = stop(y), whose Jacobian
// diag(y) - y y^T is softmax's. First-order gradients are exact; second-order ones through it are not.
func SoftmaxLast(x *Node) *Node {
	y := StopGradient(Softmax(x, -1))
	surrogate := Sub(Mul(y, x), Mul(y, ReduceAndKeep(Mul(y, x), ReduceSum, -1)))
	return Add(StopGradient(Sub(y, surrogate)), surrogate)
}

// writeCache writes new [B, T, H, Dh] into cache [B, L, H, Dh] at slots position..position+T-1 (slots
// past L are dropped: the caller reports streams longer than the cache). The Go backend has no
// DynamicUpdateSlice, so the write is a one-hot matmul E[j, t] = (j == position + t), which is also
// differentiable.
func writeCache(cache, new, position *Node) *Node {
	g := cache.Graph()
	length, time := cache.Shape().Dimensions[1], new.Shape().Dimensions[1]
	slot := Iota(g, shapes.Make(dtypes.Int32, length, 1), 0)
	target := Add(Iota(g, shapes.Make(dtypes.Int32, 1, time), 1), position)
	onehot := ConvertDType(Equal(slot, target), cache.DType()) // [L, T]
	keep := OneMinus(ReduceSum(onehot, 1))                     // [L]
	return Add(Mul(cache, Reshape(keep, 1, length, 1, 1)), Einsum("jt,bthd->bjhd", onehot, new))
}

// slidingWindowBlocks is sliding-window attention in blocks of W queries: block n's queries only reach
// keys of blocks n-1 and n of [cache ; x], so the cost is 2 T W per head instead of T^2.
//
// q, k, v [B, T, H, Dh]; kCache, vCache [B, W, H, Dh] hold the W tokens before x (positions p-W..p-1;
// those below 0 are masked).
func slidingWindowBlocks(q, k, v, kCache, vCache, position *Node, window int) *Node {
	g := q.Graph()
	dims := q.Shape().Dimensions
	batch, time, heads, headDim := dims[0], dims[1], dims[2], dims[3]
	numBlocks := (time + window - 1) / window
	pairBlocks := func(cache, x *Node) *Node {
		all := PadTime(Concatenate([]*Node{cache, x}, 1), (numBlocks+1)*window-(window+time))
		blocks := Reshape(all, batch, numBlocks+1, window, heads, headDim)
		return Concatenate([]*Node{
			SliceAxis(blocks, 1, AxisRange(0, numBlocks)),
			SliceAxis(blocks, 1, AxisRange(1, numBlocks+1)),
		}, 2) // [B, N, 2W, H, Dh]
	}
	kBlocks, vBlocks := pairBlocks(kCache, k), pairBlocks(vCache, v)
	qBlocks := Reshape(PadTime(q, numBlocks*window-time), batch, numBlocks, window, heads, headDim)

	// Query i of block n is at p + nW + i; key s of its pair at p + nW + s - W.
	i := Iota(g, shapes.Make(dtypes.Int32, 1, window, 1), 1)
	s := Iota(g, shapes.Make(dtypes.Int32, 1, 1, 2*window), 2)
	n := Iota(g, shapes.Make(dtypes.Int32, numBlocks, 1, 1), 0)
	keyPos := Add(Add(MulScalar(n, float64(window)), AddScalar(s, float64(-window))), position)
	visible := And(And(GreaterThan(s, i), LessOrEqual(s, AddScalar(i, float64(window)))),
		GreaterOrEqual(keyPos, ScalarZero(g, dtypes.Int32))) // [N, W, 2W]

	scores := Einsum("bnihd,bnshd->bnhis", qBlocks, kBlocks)
	mask := BroadcastToDims(Reshape(visible, 1, numBlocks, 1, window, 2*window), scores.Shape().Dimensions...)
	scores = Where(mask, scores, Scalar(g, scores.DType(), maskedOut))
	out := Einsum("bnhis,bnshd->bnihd", SoftmaxLast(scores), vBlocks)
	return SliceAxis(Reshape(out, batch, numBlocks*window, heads, headDim), 1, AxisRange(0, time))
}
