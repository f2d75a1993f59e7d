package titans

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph"
)

// chunkStepMapped is chunkStep for a retention other than l2 (W = phi(A)). The state holds the
// accumulators A; all gradients of the chunk are taken at W0 = phi(A0), so the accumulators are the
// same linear recurrence as Titans' weights,
//
//	A_t = B_t A0 + c_t S0 - sum_{i<=t} A_ti theta_i p_i^T r_i,
//
// and what differs between the two forms is what a token reads (doc.go, "Miras ... chunked form"):
// boundaryReads (the default) or, with Retention.ExactReads, exactReads.
func chunkStepMapped(q, k, v, theta, delta *Node, coefs chunkCoefs, st State, cfg OpConfig) (chunkOut, State) {
	r := cfg.Retention
	w0 := r.weights(st.W)
	ps, rs, loss := biasGradFactors(w0, k, v, cfg.Bias, delta, cfg.Autodiff)
	theta, clamped := clampTheta(theta, ps, rs, cfg.GradClamp)
	aTheta := Mul(coefs.a, InsertAxes(theta, 2)) // A_ti theta_i [B, H, t, i]
	next := nextAccumulators(ps, rs, theta, aTheta, coefs, st)
	var y *Node
	if r.ExactReads {
		y = exactReads(q, ps, rs, aTheta, coefs, st, r)
	} else {
		y = boundaryReads(q, w0, ps, rs, aTheta, coefs, st, next, r, q.Shape().Dimensions[2] == cfg.ChunkSize)
	}
	return chunkOut{y: y, loss: loss, theta: theta, clamped: clamped}, next
}

// nextAccumulators returns the accumulators and momentum after the chunk's last token n:
// A_n = B_n A0 + c_n S0 - sum_i A_ni theta_i p_i^T r_i and S_n = E_n S0 - sum_i (E_n / E_i) theta_i p_i^T r_i.
func nextAccumulators(ps, rs []*Node, theta, aTheta *Node, coefs chunkCoefs, st State) State {
	n := theta.Shape().Dimensions[2]
	lastRow := func(x *Node) *Node { return Squeeze(SliceAxis(x, 2, AxisElem(n-1)), 2) } // [B, H, n]
	lastCol := func(x *Node) *Node { return InsertAxes(SliceAxis(x, 2, AxisElem(n-1)), -1) }
	wCoef, sCoef := lastRow(aTheta), Mul(lastRow(coefs.lE), theta)
	next := State{W: make([]*Node, len(st.W)), S: make([]*Node, len(st.S))}
	for l := range st.W {
		wUpdate := tmm(Mul(ps[l], InsertAxes(wCoef, -1)), rs[l])
		sUpdate := tmm(Mul(ps[l], InsertAxes(sCoef, -1)), rs[l])
		next.W[l] = Sub(Add(Mul(lastCol(coefs.bt), st.W[l]), Mul(lastCol(coefs.c), st.S[l])), wUpdate)
		next.S[l] = Sub(Mul(lastCol(coefs.e), st.S[l]), sUpdate)
	}
	return next
}

// boundaryReads is the chunk-boundary read y [B, H, n, Dh] of the n tokens of a chunk. The map phi is
// applied where the chunk's weights are made: at its start (W0 = phi(A0), where the gradients are taken)
// and at its end, where the last token of a complete chunk (full: n = ChunkSize) reads
// y_n = M_{phi(A_n)}(q_n) exactly. The last token of a call's partial chunk is no boundary (it is inside
// the chunk that more tokens would fill), so outputs do not depend on where a call ends. Inside, token t reads
// weights that are linear in its accumulator, the first-order expansion of phi about A0 with the
// Jacobian replaced by a map P of the layer's input side (jacobianLeft):
//
//	W~_t = phi(A0) + P (A_t - A0),   so  h W~_t = h W0 + (B_t - 1) (h P) A0 + c_t (h P) S0 - sum_i A_ti theta_i ((h P) . p_i) r_i
//
// which costs what Titans' read costs (no per-token matrices). For lq, P = s(A0) I with s = 1 / ||A0||_q^{q-2}
// and W0 = s A0, so h W~_t = s(A0) (h A_t): the normaliser is frozen at the chunk start.
func boundaryReads(q *Node, w0, ps, rs []*Node, aTheta *Node, coefs chunkCoefs, st, next State, r Retention, full bool) *Node {
	n := q.Shape().Dimensions[2]
	var last *Node
	if full {
		last = Read(r.weights(next.W), SliceAxis(q, 2, AxisElem(n-1)))
		if n == 1 {
			return last
		}
	}
	bt, c := InsertAxes(coefs.bt, -1), InsertAxes(coefs.c, -1)
	linear := func(h *Node, l int, bt *Node) *Node { // bt (h A0) + c (h S0) - sum_i A_ti theta_i (h . p_i) r_i
		z := Add(Mul(bt, mm(h, st.W[l])), Mul(c, mm(h, st.S[l])))
		return Sub(z, mm(Mul(aTheta, mmT(h, ps[l])), rs[l]))
	}
	var z *Node
	h := q
	for l := range st.W {
		if l > 0 {
			h = silu(z)
		}
		if r.Kind == RetentionLq {
			z = Mul(r.lqTokenScale(coefs.bt, coefs.c, ps[l], rs[l], aTheta, st.W[l], st.S[l]), linear(h, l, bt))
		} else {
			z = Add(mm(h, w0[l]), linear(r.jacobianLeft(h, w0[l]), l, AddScalar(bt, -1)))
		}
	}
	if !full {
		return z
	}
	return Concatenate([]*Node{SliceAxis(z, 2, AxisRange(0, n-1)), last}, 2)
}

// lqTokenScale is the per-token normaliser s_t [B, H, n, 1] of an lq layer's chunk-boundary read,
// h W~_t = s_t (h A_t). W = A / ||A||_q^{q-2} needs the q-norm of every A_t, which takes the matrices;
// their Frobenius norms do not (Gram products of the rank-1 steps), so the q-norm is estimated from the
// Frobenius norm with the chunk start's ratio, ||A_t||_q ~ ||A0||_q ||A_t||_F / ||A0||_F (exact when A_t
// is a multiple of A0, e.g. under the decay alone):
//
//	s_t = s(A0) (||A0||_F^2 / ||A_t||_F^2)^{(q-2)/2},   A_t = X_t - sum_i A_ti theta_i p_i^T r_i,  X_t = B_t A0 + c_t S0
//	||A_t||_F^2 = ||X_t||_F^2 - 2 sum_i A_ti theta_i p_i X_t r_i^T + sum_ij A_ti theta_i A_tj theta_j (p_i . p_j)(r_i . r_j)
//
// (the squared norms floored at a tiny positive value against roundoff). bt, c: B_t and c_t [B, H, n].
func (r Retention) lqTokenScale(bt, c, p, rr, aTheta, a0, s0 *Node) *Node {
	frob := func(x, y *Node) *Node { return Squeeze(ReduceAndKeep(Mul(x, y), ReduceSum, -2, -1), -1) } // [B, H, 1]
	aa, as, ss := frob(a0, a0), frob(a0, s0), frob(s0, s0)
	xx := Add(Add(Mul(Square(bt), aa), MulScalar(Mul(Mul(bt, c), as), 2)), Mul(Square(c), ss))
	pAr := ReduceSum(Mul(mm(p, a0), rr), -1) // p_i A0 r_i^T [B, H, n]
	pSr := ReduceSum(Mul(mm(p, s0), rr), -1)
	weighted := func(x *Node) *Node { return Squeeze(mm(aTheta, InsertAxes(x, -1)), -1) } // sum_i A_ti theta_i x_i
	cross := Add(Mul(bt, weighted(pAr)), Mul(c, weighted(pSr)))
	gram := Mul(mmT(p, p), mmT(rr, rr))                            // (p_i . p_j)(r_i . r_j) [B, H, n, n]
	quad := ReduceSum(Mul(mm(aTheta, gram), aTheta), -1)           // [B, H, n]
	ft := MaxScalar(Add(Sub(xx, MulScalar(cross, 2)), quad), tiny) // ||A_t||_F^2
	ratio := powScalar(Div(MaxScalar(aa, tiny), ft), (r.Q-2)/2)
	return InsertAxes(Mul(Squeeze(r.lqScale(a0), -1), ratio), -1)
}

// tiny floors squared Frobenius norms (lqTokenScale): far below any accumulator's, above float32's least.
const tiny = 1e-30

// jacobianLeft returns h P for layer inputs h [B, H, n, in], the chunk-boundary read's stand-in for the
// Jacobian of phi at A0 (boundaryReads), given the chunk-start weights w0 = phi(A0) [B, H, in, out]:
//
//	kl:          P = c (diag(pi) - pi pi^T), pi = the mean over output columns of the columns' distributions
//	             w0 / c: the softmax Jacobian c (diag(s) - s s^T) of each column s, with every column's s
//	             replaced by their mean (exact when all columns are one distribution, e.g. at A0 = 0)
//	elastic_net: P = I (exact for the entries beyond the threshold, |A0| > gamma)
func (r Retention) jacobianLeft(h, w0 *Node) *Node {
	if r.Kind != RetentionKL {
		return h
	}
	c := math.Sqrt(float64(w0.Shape().Dimensions[2]))
	pi := InsertAxes(DivScalar(ReduceMean(w0, -1), c), 2) // [B, H, 1, in]
	return MulScalar(Sub(Mul(h, pi), Mul(ReduceAndKeep(Mul(h, pi), ReduceSum, -1), pi)), c)
}

// exactReads is the exact read y_t = M_{phi(A_t)}(q_t) [B, H, n, Dh]: each token's A_t is built as a matrix
// ([B, H, n, in, out], one batched product over the chunk) and mapped, at n^2 in out multiply-adds per layer
// and chunk (Titans' read needs n^2 (in + out)).
func exactReads(q *Node, ps, rs []*Node, aTheta *Node, coefs chunkCoefs, st State, r Retention) *Node {
	perToken := func(x *Node) *Node { return InsertAxes(x, -1, -1) } // [B, H, n] -> [B, H, n, 1, 1]
	h := q
	var z *Node
	for l := range st.W {
		if l > 0 {
			h = silu(z)
		}
		// sum_i A_ti theta_i p_i^T r_i for every t: [B, H, t, i, in] x [B, H, i, out] -> [B, H, t, in, out].
		scaled := Mul(InsertAxes(aTheta, -1), InsertAxes(ps[l], 2))
		steps := Einsum("bhtij,bhik->bhtjk", scaled, rs[l])
		acc := Add(Mul(perToken(coefs.bt), InsertAxes(st.W[l], 2)), Mul(perToken(coefs.c), InsertAxes(st.S[l], 2)))
		z = Einsum("bhtj,bhtjk->bhtk", h, r.weight(Sub(acc, steps)))
	}
	return z
}

// tokenWeights returns the weights token t reads in the token-by-token reference (naive.go), given the
// accumulators a0 at its chunk's start and a after its own write, boundary when t is the last token of a
// complete chunk (position ChunkSize - 1): the exact phi(A_t) with ExactReads or at the boundary, else the
// chunk-boundary form of boundaryReads as full matrices (boundaryWeight). The l2 retention returns a
// itself.
func (r Retention) tokenWeights(a0, a []*Node, boundary bool) []*Node {
	if r.isL2() || r.ExactReads || boundary {
		return r.weights(a)
	}
	out := make([]*Node, len(a))
	for l := range a {
		out[l] = r.boundaryWeight(a0[l], a[l])
	}
	return out
}

// readWeight is the weight one layer's tokens read given full matrices (the document forms,
// documents.go): a0 the accumulators at each token's segment start and a after its write (both
// [..., in, out], a0 broadcastable), boundary a 0/1 mask broadcastable to them that is 1 where the token
// is the last of a complete chunk on its document's grid. It is phi(a) with ExactReads, else phi(a) at the
// boundary and the chunk-boundary form elsewhere.
func (r Retention) readWeight(a0, a, boundary *Node) *Node {
	w := r.weight(a)
	if r.isL2() || r.ExactReads {
		return w
	}
	return Add(Mul(boundary, w), Mul(OneMinus(boundary), r.boundaryWeight(BroadcastToDims(a0, a.Shape().Dimensions...), a)))
}

// boundaryWeight is the chunk-boundary form's weight W~ for accumulators a after a token's write and a0 at
// its chunk's start, full matrices [..., in, out] of one shape:
//
//	lq:          s(A0) (||A0||_F^2 / ||A||_F^2)^{(q-2)/2} A, the norms from the entries (lqTokenScale)
//	kl:          phi(A0) + P (A - A0), P = c (diag(pi) - pi pi^T) applied along in (jacobianLeft)
//	elastic_net: phi(A0) + (A - A0)
func (r Retention) boundaryWeight(a0, a *Node) *Node {
	if r.Kind == RetentionLq {
		sq := func(x *Node) *Node { return MaxScalar(ReduceAndKeep(Square(x), ReduceSum, -2, -1), tiny) }
		return Mul(Mul(r.lqScale(a0), powScalar(Div(sq(a0), sq(a)), (r.Q-2)/2)), a)
	}
	w0 := r.weight(a0)
	d := Sub(a, a0)
	if r.Kind == RetentionKL {
		// P d: the rows of d scaled by pi, minus pi times pi's weighted sum of the rows.
		c := math.Sqrt(float64(a.Shape().Dimensions[a.Rank()-2]))
		pi := InsertAxes(DivScalar(ReduceMean(w0, -1), c), -1) // [..., in, 1]
		d = MulScalar(Sub(Mul(pi, d), Mul(pi, ReduceAndKeep(Mul(pi, d), ReduceSum, -2))), c)
	}
	return Add(w0, d)
}
