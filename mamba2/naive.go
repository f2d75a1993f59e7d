package mamba2

import (
	"fmt"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Naive is the per-token recurrence of Mamba2's SSM (Dao & Gu 2024, the selective SSM of sec. 3 with
// the scalar-times-identity A of sec. 7.2 / Listing 1's semantics), the reference the chunked form is
// tested against. Per batch row and head h (group g = h / (H/G)), for t = 1..T:
//
//	S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T;   y_t = S_t C_t
//
// x: [B, T, H, P]; dt: [B, T, H] (after softplus); a: [H] (A = -exp(A_log), negative); b, c:
// [B, T, G, N]; h0: [B, H, P, N] (nil = zeros). It returns y [B, T, H, P] (without the D skip, which
// the layer adds) and the final state [B, H, P, N]. The graph is unrolled over T.
func Naive(x, dt, a, b, c, h0 *Node) (y, ht *Node) {
	h0 = checkInputs("mamba2.Naive", x, dt, a, b, c, h0)
	heads, time := x.Shape().Dimensions[2], x.Shape().Dimensions[1]
	b, c = perHead(b, heads), perHead(c, heads)
	state := h0
	outs := make([]*Node, time)
	for t := range time {
		at := func(v *Node) *Node { return Squeeze(SliceAxis(v, 1, AxisElem(t)), 1) }
		outs[t], state = Step(at(x), at(dt), a, at(b), at(c), state)
	}
	return Stack(outs, 1), state
}

// Step is one token of the recurrence, the decode step: x_t [B, H, P]; dt_t [B, H]; a [H]; b_t, c_t
// [B, H, N] (already per head); state [B, H, P, N]. It returns y_t [B, H, P] and the next state.
func Step(xt, dtt, a, bt, ct, state *Node) (yt, next *Node) {
	decay := Exp(Mul(dtt, ExpandLeftToRank(a, 2)))                     // exp(dt A): [B, H]
	write := Einsum("bhp,bhn->bhpn", Mul(xt, InsertAxes(dtt, -1)), bt) // dt x B^T
	next = Add(Mul(state, InsertAxes(decay, -1, -1)), write)           // [B, H, P, N]
	yt = Einsum("bhpn,bhn->bhp", next, ct)                             // the state after the write
	return yt, next
}

// perHead maps per-group b [B, T, G, N] to per-head [B, T, H, N]: head h reads group h / (H/G), as
// mamba_ssm's kernels and fla's decode path do (consecutive heads share a group).
func perHead(b *Node, heads int) *Node {
	d := b.Shape().Dimensions
	groups := d[2]
	if groups == heads {
		return b
	}
	b = BroadcastToDims(InsertAxes(b, 3), d[0], d[1], groups, heads/groups, d[3])
	return Reshape(b, d[0], d[1], heads, d[3])
}

// checkInputs panics, naming the op and the shapes, when the inputs do not fit together, and returns
// h0 or a zero state when h0 is nil.
func checkInputs(op string, x, dt, a, b, c, h0 *Node) *Node {
	xd, bd := x.Shape().Dimensions, b.Shape().Dimensions
	bad := len(xd) != 4 || len(bd) != 4 || !b.Shape().Equal(c.Shape()) ||
		bd[0] != xd[0] || bd[1] != xd[1] || bd[2] < 1 || xd[2]%bd[2] != 0 ||
		dt.Rank() != 3 || dt.Shape().Dimensions[0] != xd[0] || dt.Shape().Dimensions[1] != xd[1] || dt.Shape().Dimensions[2] != xd[2] ||
		a.Rank() != 1 || a.Shape().Dimensions[0] != xd[2]
	for _, v := range []*Node{dt, a, b, c} {
		bad = bad || v.DType() != x.DType()
	}
	if bad {
		panic(fmt.Errorf("%s: want x [B, T, H, P], dt [B, T, H], a [H], b, c [B, T, G, N] with G dividing H, of one dtype; got x %s, dt %s, a %s, b %s, c %s",
			op, x.Shape(), dt.Shape(), a.Shape(), b.Shape(), c.Shape()))
	}
	want := shapes.Make(x.DType(), xd[0], xd[2], xd[3], bd[3])
	if h0 == nil {
		return Zeros(x.Graph(), want)
	}
	if !h0.Shape().Equal(want) {
		panic(fmt.Errorf("%s: want h0 [B, H, P, N] = %s, got %s", op, want, h0.Shape()))
	}
	return h0
}
