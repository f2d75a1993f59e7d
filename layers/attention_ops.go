package layers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// maskedOut is the score given to masked positions: exp of it underflows to exactly 0 in float32 and
// float64, and it stays finite so no NaN appears in gradients.
const maskedOut = -1e9

// denseAttention is the plain dense masked form of softmax attention (the reference the fast forms in
// attention_core.go are tested against): softmax attention of q [B, T, H, Dh] (already scaled) over
// [persistent prefix (nil: none) ; k], v [B, S, H, Dh].
//
// Query t sits at absolute position p + t (p = position, a scalar int32 node; nil means 0). Key i sits at
// keyOffset + i (nil means 0): 0 when keys are absolute cache slots or x itself from position 0, p - W
// when the keys are [last W tokens ; x]. A query sees the keys at absolute positions in
// (pos - window, pos] that are >= 0 (window = 0: no lower bound), and every key of the prefix.
func denseAttention(q, k, v, position, keyOffset *Node, window int, prefix *kvPrefix) *Node {
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
	return timeMajor(maskedAttention(headMajor(q), headMajor(k), headMajor(v), visible, prefix))
}

// maskedAttention is softmax attention of head-major q [B, H, T, Dh] (already scaled) over the keys and
// values [B, H, S, Dh] that visible [T, S] (bool) marks, and over every key of the prefix (nil: none).
func maskedAttention(q, k, v, visible *Node, prefix *kvPrefix) *Node {
	g := q.Graph()
	if prefix != nil {
		k, v = prefix.prepend(k, v)
		time := visible.Shape().Dimensions[0]
		visible = Concatenate([]*Node{Ones(g, shapes.Make(dtypes.Bool, time, prefix.len())), visible}, 1)
	}
	scores := Einsum("bhtd,bhsd->bhts", q, k)
	time, keys := visible.Shape().Dimensions[0], visible.Shape().Dimensions[1]
	scores = Where(BroadcastToDims(Reshape(visible, 1, 1, time, keys), scores.Shape().Dimensions...), scores,
		Scalar(g, scores.DType(), maskedOut))
	return Einsum("bhts,bhsd->bhtd", SoftmaxLast(scores), v)
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

// writeCacheOneHot is the reference cache write (the fast path uses writeCache's DynamicUpdateSlice):
// new [B, T, H, Dh] into cache [B, L, H, Dh] at slots position..position+T-1 (slots past L dropped) as
// a one-hot matmul E[j, t] = (j == position + t).
func writeCacheOneHot(cache, new, position *Node) *Node {
	g := cache.Graph()
	length, time := cache.Shape().Dimensions[1], new.Shape().Dimensions[1]
	slot := Iota(g, shapes.Make(dtypes.Int32, length, 1), 0)
	target := Add(Iota(g, shapes.Make(dtypes.Int32, 1, time), 1), position)
	onehot := ConvertDType(Equal(slot, target), cache.DType()) // [L, T]
	keep := OneMinus(ReduceSum(onehot, 1))                     // [L]
	return Add(Mul(cache, Reshape(keep, 1, length, 1, 1)), Einsum("jt,bthd->bjhd", onehot, new))
}
