package gla

import (
	"fmt"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Naive is the per-token recurrence of gated linear attention (Yang et al. 2024, eq. 3 with the
// per-channel gate of sec. 4.1), the reference Chunked is tested against. Per batch and head, for
// t = 1..T:
//
//	S <- diag(exp(gk_t)) S + k_t v_t^T;  o_t = S^T (scale q_t)
//
// q, k, gk: [B, T, H, K]; v: [B, T, H, V]; h0: [B, H, K, V] (nil = zeros). gk is the log-decay of each
// key channel (<= 0). It returns o [B, T, H, V] and the final state ht [B, H, K, V]. The graph is
// unrolled over T.
func Naive(q, k, v, gk, h0 *Node, scale float64) (o, ht *Node) {
	h0 = checkInputs("gla.Naive", q, k, v, gk, h0)
	time := q.Shape().Dimensions[1]
	state := h0
	outs := make([]*Node, time)
	for t := range time {
		at := func(x *Node) *Node { return Squeeze(SliceAxis(x, 1, AxisElem(t)), 1) }
		outs[t], state = Step(at(q), at(k), at(v), at(gk), state, scale)
	}
	return Stack(outs, 1), state
}

// Step is one token of the recurrence, the decode step: q_t, k_t, gk_t [B, H, K]; v_t [B, H, V];
// state [B, H, K, V]. It returns o_t [B, H, V] and the next state.
func Step(qt, kt, vt, gkt, state *Node, scale float64) (ot, next *Node) {
	// Row i of S holds what key channel i has accumulated: it decays by its own factor exp(gk_t[i]).
	next = Mul(state, InsertAxes(Exp(gkt), -1))
	next = Add(next, Einsum("bhk,bhv->bhkv", kt, vt))
	ot = Einsum("bhk,bhkv->bhv", MulScalar(qt, scale), next)
	return ot, next
}

// checkInputs panics, naming the op and the shapes, when the inputs do not fit together, and returns h0
// or a zero state when h0 is nil.
func checkInputs(op string, q, k, v, gk, h0 *Node) *Node {
	qd, vd := q.Shape().Dimensions, v.Shape().Dimensions
	bad := len(qd) != 4 || len(vd) != 4 || !k.Shape().Equal(q.Shape()) || !gk.Shape().Equal(q.Shape()) ||
		vd[0] != qd[0] || vd[1] != qd[1] || vd[2] != qd[2] || v.DType() != q.DType()
	if bad {
		panic(fmt.Errorf("%s: want q, k, gk [B, T, H, K] and v [B, T, H, V] of one dtype; got q %s, k %s, gk %s, v %s",
			op, q.Shape(), k.Shape(), gk.Shape(), v.Shape()))
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
