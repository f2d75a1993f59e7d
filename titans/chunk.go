package titans

import (
	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
)

// Chunked is the chunkwise-parallel form of the memory (paper section 3.2), equal to Naive.
//
// q, k, v: [B, H, T, Dh]; gates: [B, H, T]; st: the state before the first token. It returns
// y [B, H, T, Dh] (y_t = M_t(q_t), read after token t's own write) and the state after the last token.
//
// Within a chunk of n tokens with start weights W0 and momentum S0, every token's gradient
// u_i = p_i^T r_i is taken at W0 (gradFactors), so momentum and weights are linear recurrences:
//
//	S_t = E_t S0 - sum_{i<=t} (E_t/E_i) theta_i u_i,                    E_t = prod_{j<=t} eta_j
//	W_t = B_t W0 + c_t S0 - sum_{i<=t} A_ti theta_i u_i,                B_t = prod_{j<=t} (1 - alpha_j)
//	A = L_B L_E,  (L_X)_ts = X_t / X_s for s <= t (0 above),  c = L_B E.
//
// The ratios are exp of differences of prefix sums of log gates. Reading the memory at W_t with the
// rank-1 updates never materialises per-token weights: for a layer input h_t,
// h_t W_t = B_t h_t W0 + c_t h_t S0 - sum_i A_ti theta_i (h_t . p_i) r_i, which is matmuls over the chunk.
func Chunked(q, k, v *Node, gates Gates, st State, cfg OpConfig) (y *Node, final State) {
	y, final, _ = ChunkedWithStats(q, k, v, gates, st, cfg)
	return y, final
}

// ChunkedWithStats is Chunked that also returns introspection scalars.
func ChunkedWithStats(q, k, v *Node, gates Gates, st State, cfg OpConfig) (y *Node, final State, stats Stats) {
	y, bounds, stats := chunkedWithBoundaries(q, k, v, gates, st, cfg)
	return y, bounds[len(bounds)-1], stats
}

// chunkedWithBoundaries is ChunkedWithStats returning the state at every chunk boundary: bounds[j] is the
// state after j chunks (bounds[0] = st, the last one the final state).
//
// When T is a multiple of the chunk size, everything that does not depend on the carried weights (the
// gate coefficient matrices) is computed for all chunks at once, and the per-chunk pieces of q, k, v
// and the gates come from layers.SplitAxis (whose gradient is one Concatenate, not a padded sum per chunk).
func chunkedWithBoundaries(q, k, v *Node, gates Gates, st State, cfg OpConfig) (y *Node, bounds []State, stats Stats) {
	checkInputs("Chunked", q, k, v, perTokenGates(gates), st)
	dims := q.Shape().Dimensions
	batch, heads, time := dims[0], dims[1], dims[2]
	c := min(cfg.ChunkSize, time)
	var ys, losses, thetas, clamped []*Node
	bounds = []State{st}
	step := func(q, k, v, theta, delta *Node, coefs chunkCoefs) {
		var out chunkOut
		if cfg.Retention.isL2() {
			out, st = chunkStep(q, k, v, theta, delta, coefs, st, cfg)
		} else {
			out, st = chunkStepMapped(q, k, v, theta, delta, coefs, st, cfg)
		}
		bounds = append(bounds, st)
		ys, losses, thetas, clamped = append(ys, out.y), append(losses, out.loss), append(thetas, out.theta), append(clamped, out.clamped)
	}
	if n := time / c; time%c == 0 && n > 1 {
		byChunk := func(x *Node) []*Node { // [B, H, T, ...] -> n x [B, H, C, ...]
			if x == nil {
				return make([]*Node, n)
			}
			d := append([]int{batch, heads, n, c}, x.Shape().Dimensions[3:]...)
			return layers.SplitAxis(Reshape(x, d...), 2)
		}
		qs, ks, vs, thetas, deltas := byChunk(q), byChunk(k), byChunk(v), byChunk(gates.Theta), byChunk(gates.Delta)
		all := newChunkCoefs(Reshape(gates.Eta, batch, heads, n, c), Reshape(gates.Alpha, batch, heads, n, c))
		lE, a, e, bt, cc := layers.SplitAxis(all.lE, 2), layers.SplitAxis(all.a, 2), layers.SplitAxis(all.e, 2), layers.SplitAxis(all.bt, 2), layers.SplitAxis(all.c, 2)
		for j := range n {
			step(qs[j], ks[j], vs[j], thetas[j], deltas[j], chunkCoefs{lE: lE[j], a: a[j], e: e[j], bt: bt[j], c: cc[j]})
		}
	} else {
		for _, b := range chunkBounds(time, c) {
			part := func(x *Node) *Node {
				if x == nil {
					return nil
				}
				return SliceAxis(x, 2, AxisRange(b[0], b[1]))
			}
			step(part(q), part(k), part(v), part(gates.Theta), part(gates.Delta), newChunkCoefs(part(gates.Eta), part(gates.Alpha)))
		}
	}
	final := State{W: cfg.Retention.weights(st.W), S: st.S}
	return concatTime(ys), bounds, opStats(losses, thetas, clamped, gates, final)
}

// chunkCoefs are a chunk's gate coefficients (chunkStep), for gates [..., n] over its n tokens: the ratio
// matrix L_E and A = L_B L_E [..., n, n], and E_t, B_t and c = L_B E [..., n]. The document-start form
// (documents.go) also reads L_B and the floored 1 - alpha_t (gateB); the batched split in
// chunkedWithBoundaries leaves those two nil.
type chunkCoefs struct {
	lE, a, e, bt, c *Node
	lB, gateB       *Node
}

func newChunkCoefs(eta, alpha *Node) chunkCoefs {
	floor := logFloor(eta.DType())
	gateB := MaxScalar(OneMinus(alpha), floor)
	cumE := CumSum(Log(MaxScalar(eta, floor)), -1) // log E_t
	cumB := CumSum(Log(gateB), -1)                 // log B_t
	lE, lB := ratioMatrix(cumE), ratioMatrix(cumB)
	e := Exp(cumE) // cum log gates are <= 0
	return chunkCoefs{lE: lE, a: mm(lB, lE), e: e, bt: Exp(cumB), c: Squeeze(mm(lB, InsertAxes(e, -1)), -1), lB: lB, gateB: gateB}
}

// opStats gathers a memory op's introspection from its per-piece losses, thetas and clamp flags
// [B, H, n], its gates and its final state (the weights, not the accumulators, of a Miras retention).
func opStats(losses, thetas, clamped []*Node, gates Gates, final State) Stats {
	stats := Stats{
		Surprise:        ReduceAllMean(concatTime(losses)),
		Theta:           ReduceAllMean(concatTime(thetas)),
		Eta:             ReduceAllMean(gates.Eta),
		Alpha:           ReduceAllMean(gates.Alpha),
		ClampedFraction: ReduceAllMean(concatTime(clamped)),
	}
	for _, w := range final.W {
		stats.WeightNorm = append(stats.WeightNorm, ReduceAllMean(Sqrt(ReduceSum(Square(w), -1, -2))))
	}
	return stats
}

func concatTime(parts []*Node) *Node {
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 2)
}

type chunkOut struct {
	y                    *Node // [B, H, n, Dh]
	loss, theta, clamped *Node // [B, H, n]
}

// chunkStep processes one chunk of n tokens from state st, given theta [B, H, n] (and the Huber delta
// [B, H, n] or nil) and the chunk's gate coefficients, for the l2 retention (W = A).
func chunkStep(q, k, v, theta, delta *Node, coefs chunkCoefs, st State, cfg OpConfig) (chunkOut, State) {
	ps, rs, loss := biasGradFactors(st.W, k, v, cfg.Bias, delta, cfg.Autodiff)
	theta, clamped := clampTheta(theta, ps, rs, cfg.GradClamp)
	lE, e, bt, c := coefs.lE, coefs.e, coefs.bt, coefs.c
	aTheta := Mul(coefs.a, InsertAxes(theta, 2)) // A_ti theta_i

	var z *Node
	h := q
	for l := range st.W {
		if l > 0 {
			h = silu(z)
		}
		z = Add(Mul(InsertAxes(bt, -1), mm(h, st.W[l])), Mul(InsertAxes(c, -1), mm(h, st.S[l])))
		scores := Mul(aTheta, mmT(h, ps[l]))
		z = Sub(z, mm(scores, rs[l]))
	}

	n := q.Shape().Dimensions[2]
	lastRow := func(x *Node) *Node { return Squeeze(SliceAxis(x, 2, AxisElem(n-1)), 2) } // [B, H, n]
	lastCol := func(x *Node) *Node { return InsertAxes(SliceAxis(x, 2, AxisElem(n-1)), -1) }
	wCoef := lastRow(aTheta)         // A_ni theta_i
	sCoef := Mul(lastRow(lE), theta) // (E_n / E_i) theta_i
	next := State{W: make([]*Node, len(st.W)), S: make([]*Node, len(st.S))}
	for l := range st.W {
		wUpdate := tmm(Mul(ps[l], InsertAxes(wCoef, -1)), rs[l])
		sUpdate := tmm(Mul(ps[l], InsertAxes(sCoef, -1)), rs[l])
		next.W[l] = Sub(Add(Mul(lastCol(bt), st.W[l]), Mul(lastCol(c), st.S[l])), wUpdate)
		next.S[l] = Sub(Mul(lastCol(e), st.S[l]), sUpdate)
	}
	return chunkOut{y: z, loss: loss, theta: theta, clamped: clamped}, next
}

// ratioMatrix returns (L)_ts = exp(cum_t - cum_s) for s <= t and 0 above the diagonal, cum [..., n].
// The masked entries are replaced before the exp so large positive differences never overflow; the
// others are <= 0 (cum is a prefix sum of log gates in (0, 1]), so their Exp stays in (0, 1]; the
// -1e30 of masked pairs gives exactly 0 (layers' TestExpOfMaskedDecays).
func ratioMatrix(cum *Node) *Node {
	dims := cum.Shape().Dimensions
	n := dims[len(dims)-1]
	diff := Sub(InsertAxes(cum, -1), InsertAxes(cum, -2)) // [..., t, s]
	ones := make([]int, len(dims)-1)
	for i := range ones {
		ones[i] = 1
	}
	mask := BroadcastToDims(Reshape(LowerTriangular(cum.Graph(), n), append(ones, n, n)...), diff.Shape().Dimensions...)
	return Exp(Where(mask, diff, Scalar(cum.Graph(), cum.DType(), -1e30)))
}
