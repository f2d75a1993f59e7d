package titans

import (
	"math"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// ropeBase is the RoPE base of the attention inside the Titans variants.
const ropeBase = 10000

// maskedScore is the logit of an invisible key: its exp is exactly 0 and it keeps gradients finite.
const maskedScore = -1e9

// swa is sliding-window softmax attention over [persistent tokens ; x] (paper sections 4.2-4.3):
// query t sees the N_p persistent tokens (learned, position-free, always visible) and the last Window
// tokens up to itself. Queries and keys of x carry RoPE at their absolute positions.
//
// Its state: the keys and values of the last Window-1 tokens, "k" and "v" [B, W-1, H, Dh] (rotated),
// and "position" [] int32, the absolute position of the next token. layers.Attention has no persistent
// tokens, hence this small local version.
type swa struct {
	heads, headDim, window, persistent, dModel int
}

func (a swa) specs(batch int, dtype dtypes.DType) []layers.StateSpec {
	kv := shapes.Make(dtype, batch, a.window-1, a.heads, a.headDim)
	return []layers.StateSpec{{Name: "k", Shape: kv}, {Name: "v", Shape: kv}, {Name: "position", Shape: shapes.Make(dtypes.Int32)}}
}

func (a swa) apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	g := x.Graph()
	state = layers.StateOrZero(g, "titans attention", a.specs(batch, x.DType()), state)
	kCache, vCache, position := state[0], state[1], state[2]
	q := layers.RoPE(a.project(scope, "q", x), position, ropeBase)
	k := layers.RoPE(a.project(scope, "k", x), position, ropeBase)
	v := a.project(scope, "v", x)
	pk, pv := a.persistentKV(scope, x)
	keys := concatSeq(pk, kCache, k)
	values := concatSeq(pv, vCache, v)

	// Absolute positions: query t at p + t; cache slot j at p - (W-1) + j; x's key s at p + s.
	cacheLen := a.window - 1
	queryPos := Add(Iota(g, shapes.Make(dtypes.Int32, time, 1), 0), position)
	keyPos := AddScalar(Add(Iota(g, shapes.Make(dtypes.Int32, 1, cacheLen+time), 1), position), float64(-cacheLen))
	visible := And(And(LessOrEqual(keyPos, queryPos), GreaterThan(keyPos, AddScalar(queryPos, float64(-a.window)))),
		GreaterOrEqual(keyPos, ScalarZero(g, dtypes.Int32)))
	if a.persistent > 0 {
		visible = Concatenate([]*Node{Ones(g, shapes.Make(dtypes.Bool, time, a.persistent)), visible}, 1)
	}
	out := attend(q, keys, values, visible)
	kAll, vAll := Concatenate([]*Node{kCache, k}, 1), Concatenate([]*Node{vCache, v}, 1)
	next := []*Node{
		SliceAxis(kAll, 1, AxisRange(time, time+cacheLen)),
		SliceAxis(vAll, 1, AxisRange(time, time+cacheLen)),
		AddScalar(position, float64(time)),
	}
	return a.output(scope, out), next
}

// project is the per-head projection "name" of x [B, T, D] -> [B, T, H, Dh].
func (a swa) project(scope *model.Scope, name string, x *Node) *Node {
	dims := x.Shape().Dimensions
	return Reshape(dense(scope.At("%s", name), x, a.heads*a.headDim), dims[0], dims[1], a.heads, a.headDim)
}

// persistentKV returns the keys and values [B, N_p, H, Dh] of the learned persistent tokens (variable
// "persistent" [N_p, D] ~ N(0, 1)), projected by the same k and v weights as x; nil when N_p = 0.
func (a swa) persistentKV(scope *model.Scope, x *Node) (k, v *Node) {
	if a.persistent == 0 {
		return nil, nil
	}
	batch := x.Shape().Dimensions[0]
	p := scope.WithInitializer(initializer.RandomNormalFn(scope, 1)).
		VariableWithShape("persistent", shapes.Make(x.DType(), a.persistent, a.dModel)).NodeValue(x.Graph())
	p = BroadcastToDims(InsertAxes(p, 0), batch, a.persistent, a.dModel)
	return a.project(scope, "k", p), a.project(scope, "v", p)
}

func (a swa) output(scope *model.Scope, out *Node) *Node {
	dims := out.Shape().Dimensions
	return dense(scope.In("output"), Reshape(out, dims[0], dims[1], a.heads*a.headDim), a.dModel)
}

// attend is softmax attention of q [B, T, H, Dh] over keys, values [B, S, H, Dh], where visible [T, S]
// (bool, shared by batch and heads) says which keys each query sees. Scores are scaled by 1/sqrt(Dh).
func attend(q, keys, values, visible *Node) *Node {
	dims := q.Shape().Dimensions
	scores := MulScalar(Einsum("bthd,bshd->bhts", q, keys), 1/math.Sqrt(float64(dims[3])))
	time, numKeys := visible.Shape().Dimensions[0], visible.Shape().Dimensions[1]
	mask := BroadcastToDims(Reshape(visible, 1, 1, time, numKeys), scores.Shape().Dimensions...)
	scores = Where(mask, scores, Scalar(q.Graph(), q.DType(), maskedScore))
	return Einsum("bhts,bshd->bthd", Softmax(scores, -1), values)
}

// concatSeq concatenates the non-nil parts along axis 1.
func concatSeq(parts ...*Node) *Node {
	var nonNil []*Node
	for _, p := range parts {
		if p != nil {
			nonNil = append(nonNil, p)
		}
	}
	if len(nonNil) == 1 {
		return nonNil[0]
	}
	return Concatenate(nonNil, 1)
}
