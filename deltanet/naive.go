package deltanet

import (
	"fmt"

	"github.com/gomlx/compute/shapes"

	. "github.com/gomlx/gomlx/core/graph"
)

// Options selects the member of the family an op computes. The zero value is linear attention;
// GatedDeltaRule turns both switches on.
type Options struct {
	// Delta uses the delta-rule write u_t = beta_t (v_t - S^T k_t) instead of the additive u_t = v_t.
	// Without it beta is ignored (its gradient is zero).
	Delta bool
	// Gate decays the state by alpha_t = exp(g_t) before each write. Without it g is treated as 0
	// (alpha = 1) and its gradient is zero.
	Gate bool
}

// The four members of the family, as op options.
var (
	GatedDeltaRule  = Options{Delta: true, Gate: true}
	DeltaRule       = Options{Delta: true}
	GatedLinearAttn = Options{Gate: true}
	LinearAttention = Options{}
)

// Naive is the per-token recurrence of the gated delta rule (Yang et al. 2025, eq. 10), the reference the
// chunkwise form is tested against. Per batch and head, for t = 1..T:
//
//	S <- exp(g_t) S;  u_t = beta_t (v_t - S^T k_t);  S <- S + k_t u_t^T;  o_t = S^T (scale q_t)
//
// q, k: [B, T, H, K]; v: [B, T, H, V]; beta, g: [B, T, H]; h0: [B, H, K, V] (nil = zeros).
// It returns o [B, T, H, V] and the final state ht [B, H, K, V]. The graph is unrolled over T.
func Naive(q, k, v, beta, g, h0 *Node, scale float64, opts Options) (o, ht *Node) {
	return NaiveDocuments(q, k, v, beta, g, h0, nil, scale, opts)
}

// NaiveDocuments is Naive over rows that pack several documents: docStart [B, T] (q's dtype) is 1 at a
// document's first token, where the state restarts from zero before the token's step (a 1 at t = 0
// drops h0). Outputs and the final state then equal running each document alone from the zero state;
// ht is the last document's. A nil docStart is Naive.
func NaiveDocuments(q, k, v, beta, g, h0, docStart *Node, scale float64, opts Options) (o, ht *Node) {
	h0 = checkInputs("deltanet.Naive", q, k, v, beta, g, h0)
	checkDocStart("deltanet.Naive", q, docStart)
	time := q.Shape().Dimensions[1]
	state := h0
	outs := make([]*Node, time)
	for t := 0; t < time; t++ {
		at := func(x *Node) *Node { return Squeeze(SliceAxis(x, 1, AxisElem(t)), 1) }
		if docStart != nil {
			state = Mul(state, InsertAxes(OneMinus(at(docStart)), -1, -1, -1)) // keep = 1 - start: [B, 1, 1, 1]
		}
		outs[t], state = Step(at(q), at(k), at(v), at(beta), at(g), state, scale, opts)
	}
	return Stack(outs, 1), state
}

// checkDocStart panics, naming the op, when docStart (nil allowed) is not [B, T] of q's dtype for q
// [B, T, ...].
func checkDocStart(op string, q, docStart *Node) {
	if docStart == nil {
		return
	}
	qd, dd := q.Shape().Dimensions, docStart.Shape().Dimensions
	if len(dd) != 2 || dd[0] != qd[0] || dd[1] != qd[1] || docStart.DType() != q.DType() {
		panic(fmt.Errorf("%s: want docStart [B, T] = [%d, %d] %s, got %s", op, qd[0], qd[1], q.DType(), docStart.Shape()))
	}
}

// Step is one token of the recurrence, the decode step: q_t, k_t [B, H, K]; v_t [B, H, V];
// beta_t, g_t [B, H]; state [B, H, K, V]. It returns o_t [B, H, V] and the next state.
func Step(qt, kt, vt, betat, gt, state *Node, scale float64, opts Options) (ot, next *Node) {
	if opts.Gate {
		state = Mul(state, InsertAxes(Exp(gt), -1, -1))
	}
	u := vt
	if opts.Delta {
		// The delta rule writes only the part of v_t the state does not already predict from k_t.
		predicted := Einsum("bhk,bhkv->bhv", kt, state)
		u = Mul(InsertAxes(betat, -1), Sub(vt, predicted))
	}
	next = Add(state, Einsum("bhk,bhv->bhkv", kt, u))
	ot = Einsum("bhk,bhkv->bhv", MulScalar(qt, scale), next)
	return ot, next
}

// checkInputs panics, naming the op and the shapes, when the inputs do not fit together, and returns h0
// or a zero state when h0 is nil.
func checkInputs(op string, q, k, v, beta, g, h0 *Node) *Node {
	qd, vd := q.Shape().Dimensions, v.Shape().Dimensions
	bad := len(qd) != 4 || len(vd) != 4 || !k.Shape().Equal(q.Shape()) ||
		vd[0] != qd[0] || vd[1] != qd[1] || vd[2] != qd[2] ||
		!beta.Shape().Equal(g.Shape()) || beta.Rank() != 3 ||
		beta.Shape().Dimensions[0] != qd[0] || beta.Shape().Dimensions[1] != qd[1] || beta.Shape().Dimensions[2] != qd[2]
	for _, x := range []*Node{k, v, beta, g} {
		bad = bad || x.DType() != q.DType()
	}
	if bad {
		panic(fmt.Errorf("%s: want q, k [B, T, H, K], v [B, T, H, V], beta, g [B, T, H] of one dtype; got q %s, k %s, v %s, beta %s, g %s",
			op, q.Shape(), k.Shape(), v.Shape(), beta.Shape(), g.Shape()))
	}
	if h0 == nil {
		return Zeros(q.Graph(), shapes.Make(q.DType(), qd[0], qd[2], qd[3], vd[3]))
	}
	hd := h0.Shape().Dimensions
	if len(hd) != 4 || hd[0] != qd[0] || hd[1] != qd[2] || hd[2] != qd[3] || hd[3] != vd[3] || h0.DType() != q.DType() {
		panic(fmt.Errorf("%s: want h0 [B, H, K, V] = [%d, %d, %d, %d] %s, got %s", op, qd[0], qd[2], qd[3], vd[3], q.DType(), h0.Shape()))
	}
	return h0
}
