package titans

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// The titans-pytorch mode (Config.Mode = "titans_pytorch", formerly "tp") reproduces lucidrains/titans-pytorch's NeuralMemory
// (see the package doc for the whole layer and each remaining difference). This file holds its memory
// form and its op; the paper mode is chunk.go and naive.go.
//
// Memory. An MLP with exact (erf) GELU between layers, wrapped in a residual LayerNorm:
//
//	M(x) = x + LN(MLP(x)) * (1 + gamma),   LN(z) = (z - mean(z)) / sqrt(var(z) + eps)
//
// gamma [Dh] per head is one more fast weight: it is trained at test time with the MLP weights and
// carried in the state as the last entry of State.W / State.S, shaped [B, H, 1, Dh] so that its
// gradient is a rank-1 factor like the others (p = 1, r = dl/dgamma). The inner loss is the mean over
// the Dh features of the squared error, l(M; k, v) = mean_d (M(k) - v)_d^2.
//
// Op (chunks of C tokens cut from the call start; only the n = floor(T / C) complete chunks write):
//
//	G_j = sum_{t in chunk j} theta_t grad l(M_{W_g}; k_t, v_t)   W_g: the base weights (TTTBatch = 0) or the
//	                                                            weights at the start of t's TTT batch
//	S_j = eta_j S_{j-1} - G_j
//	W_j = (1 - alpha_j) W_{j-1} + S_j
//	y_t = M_{W_{floor((t+1)/C)}}(q_t)                           one-token shift: the last token of chunk j
//	                                                            reads W_{j+1}, its own chunk's write
//
// eta_j, alpha_j are one value per complete chunk (the layer computes them from the chunk's mean-pooled
// input), theta_t one per token.

// tpMLP evaluates the memory MLP with weights ws [B, H, in_l, out_l] on x [B, H, n, in_1], with exact GELU
// between layers: ps[0] = x, ps[l] = GELU(zs[l-1]), zs[l] = ps[l] W_l.
func tpMLP(ws []*Node, x *Node) (ps, zs []*Node) {
	h := x
	for l, w := range ws {
		if l > 0 {
			h = geluAct(zs[l-1])
		}
		ps = append(ps, h)
		zs = append(zs, mm(h, w))
	}
	return ps, zs
}

// normalCDF is Phi(z) = (1 + erf(z / sqrt 2)) / 2.
func normalCDF(z *Node) *Node {
	return MulScalar(OnePlus(erf(MulScalar(z, 1/math.Sqrt2))), 0.5)
}

// erf is the error function. In float64 its value comes from the series
// erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!! (positive terms, no cancellation; 100 terms
// reach 1e-18 relative at |x| = 6, beyond which erf rounds to +-1), because the Go backend's Erf is the
// Abramowitz-Stegun 7.1.26 fit, 1.5e-7 off, on SIMD builds; its gradient is graph.Erf's exact one
// (2/sqrt(pi) exp(-x^2)), so autodiff graphs stay small. Other dtypes use graph.Erf directly.
func erf(x *Node) *Node {
	fast := Erf(x)
	if x.DType() != dtypes.Float64 {
		return fast
	}
	xc := ClipScalar(x, -6, 6)
	twoX2 := MulScalar(Square(xc), 2)
	term, sum := xc, xc
	for n := 1; n <= 100; n++ {
		term = Mul(term, MulScalar(twoX2, 1/float64(2*n+1)))
		sum = Add(sum, term)
	}
	series := Mul(MulScalar(Exp(Neg(Square(xc))), 2/math.Sqrt(math.Pi)), sum)
	return Add(StopGradient(Sub(series, fast)), fast)
}

// gelu is the exact GELU z Phi(z) (PyTorch's F.gelu default).
func gelu(z *Node) *Node { return Mul(z, normalCDF(z)) }

// geluPrime is d GELU(z)/dz = Phi(z) + z phi(z), phi the standard normal density.
func geluPrime(z *Node) *Node {
	density := MulScalar(Exp(MulScalar(Square(z), -0.5)), 1/math.Sqrt(2*math.Pi))
	return Add(normalCDF(z), Mul(z, density))
}

// tpForward evaluates the residual-norm memory on x [B, H, n, Dh] with ws = MLP weights then gamma
// [B, H, 1, Dh]. It returns the MLP's layer inputs and pre-activations (as tpMLP), the normalised
// output nhat, the normaliser sd = sqrt(var + eps) [B, H, n, 1] and M(x).
func tpForward(ws []*Node, x *Node, eps float64) (ps, zs []*Node, nhat, sd, out *Node) {
	mlp, gamma := ws[:len(ws)-1], ws[len(ws)-1]
	ps, zs = tpMLP(mlp, x)
	nhat, sd = layerNorm(zs[len(zs)-1], eps)
	out = Add(x, Mul(nhat, OnePlus(gamma)))
	return ps, zs, nhat, sd, out
}

// layerNorm is (z - mean(z)) / sd over the last axis, sd = sqrt(var(z) + eps) [..., 1] (no learned
// scale or shift; the memory's scale is gamma).
func layerNorm(z *Node, eps float64) (nhat, sd *Node) {
	centred := Sub(z, ReduceAndKeep(z, ReduceMean, -1))
	sd = Sqrt(AddScalar(ReduceAndKeep(Square(centred), ReduceMean, -1), eps))
	return Div(centred, sd), sd
}

// ReadTP evaluates the residual-norm memory with fixed weights ws (MLP weights, then gamma) on x
// [B, H, n, Dh]: M_W(x), no update.
func ReadTP(ws []*Node, x *Node, eps float64) *Node {
	_, _, _, _, out := tpForward(ws, x, eps)
	return out
}

// tpGradFactors is gradFactors for the residual-norm memory: rank-1 factors p_t^T r_t of the per-token
// gradient of l_t = mean_d (M(k_t) - v_t)_d^2 for every MLP layer and, last, for gamma (p = 1
// [B, H, n, 1], r = (2/Dh) e * nhat), and the per-token loss l_t [B, H, n].
//
// With e = M(k) - v and a = (2/Dh) e (1 + gamma), the LayerNorm backward is
// dl/dz = (a - mean(a) - nhat mean(a nhat)) / sd; from there back through the MLP,
// r_{l-1} = (r_l W_l^T) * GELU'(z_{l-1}).
func tpGradFactors(ws []*Node, k, v *Node, eps float64, autodiff bool) (ps, rs []*Node, loss *Node) {
	mlp, gamma := ws[:len(ws)-1], ws[len(ws)-1]
	dims := k.Shape().Dimensions
	onesDims := append(append([]int(nil), dims[:len(dims)-1]...), 1)
	ones := Ones(k.Graph(), shapes.Make(k.DType(), onesDims...))
	if autodiff {
		perToken := BroadcastToDims(gamma, dims...) // each token's own copy of gamma
		var zs []*Node
		ps, zs = tpMLP(mlp, k)
		nhat, _ := layerNorm(zs[len(zs)-1], eps)
		loss = ReduceMean(Square(Sub(Add(k, Mul(nhat, OnePlus(perToken))), v)), -1)
		rs = Gradient(ReduceAllSum(loss), append(zs, perToken)...)
		return append(ps, ones), rs, loss
	}
	ps, zs, nhat, sd, out := tpForward(ws, k, eps)
	residual := Sub(out, v)
	loss = ReduceMean(Square(residual), -1)
	scaled := MulScalar(residual, 2/float64(dims[len(dims)-1])) // d l / d M(k)
	a := Mul(scaled, OnePlus(gamma))
	dz := Div(Sub(Sub(a, ReduceAndKeep(a, ReduceMean, -1)), Mul(nhat, ReduceAndKeep(Mul(a, nhat), ReduceMean, -1))), sd)
	last := len(mlp) - 1
	rs = make([]*Node, len(ws))
	rs[last] = dz
	for l := last; l > 0; l-- {
		rs[l-1] = geluPrimeMul(mmT(rs[l], mlp[l]), zs[l-1], ps[l])
	}
	rs[len(ws)-1] = Mul(scaled, nhat)
	return append(ps, ones), rs, loss
}

// PyTorchConfig configures the tp ops.
type PyTorchConfig struct {
	ChunkSize int // C: tokens per chunk; one eta and alpha per complete chunk
	// TTTBatch: 0 takes every inner gradient at the base weights given to the op (titans-pytorch's
	// batch_size None: the learned initial weights, in every call); Q > 0 (a multiple of ChunkSize)
	// takes the gradients of each TTT mini-batch of Q tokens (cut from the call start) at the weights
	// of the batch's start.
	TTTBatch  int
	GradClamp float64 // per-token clamp of the inner-gradient norm, as OpConfig.GradClamp; 0 = off
	NormEps   float64 // epsilon of the memory's LayerNorm (titans-pytorch: 1e-5)
	Autodiff  bool    // inner-gradient factors by graph.Gradient instead of the closed form
	// Valid, when set, is a scalar int32 node: only the first Valid tokens are real, so a chunk writes
	// only when it lies within them (the layer's carried partial chunk makes the real length dynamic).
	Valid *Node
}

// tpWrite returns the chunk's new value, or with cfg.Valid set and chunk j not complete within the valid
// tokens, the old one.
func tpWrite(cfg PyTorchConfig, j int, updated, old *Node) *Node {
	if cfg.Valid == nil {
		return updated
	}
	complete := LessOrEqual(Const(cfg.Valid.Graph(), int32((j+1)*cfg.ChunkSize)), cfg.Valid)
	return Where(complete, updated, old)
}

func checkTP(op string, q *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) {
	if cfg.ChunkSize < 1 || cfg.TTTBatch < 0 || (cfg.TTTBatch > 0 && (cfg.TTTBatch < cfg.ChunkSize || cfg.TTTBatch%cfg.ChunkSize != 0)) {
		panic(fmt.Errorf("titans.%s: ttt batch %d must be 0 or a positive multiple of chunk size %d", op, cfg.TTTBatch, cfg.ChunkSize))
	}
	if len(st.W) < 2 {
		panic(fmt.Errorf("titans.%s: want the MLP weights then gamma in the state, got %d weight tensors", op, len(st.W)))
	}
	if cfg.TTTBatch == 0 {
		if len(base) != len(st.W) {
			panic(fmt.Errorf("titans.%s: ttt batch 0 takes gradients at the base weights: want %d base tensors, got %d", op, len(st.W), len(base)))
		}
		for l := range base {
			if !base[l].Shape().Equal(st.W[l].Shape()) {
				panic(fmt.Errorf("titans.%s: base weight %d is %s, want %s", op, l, base[l].Shape(), st.W[l].Shape()))
			}
		}
	}
	dims := q.Shape().Dimensions
	chunks := dims[2] / cfg.ChunkSize
	if chunks == 0 {
		return
	}
	for _, gate := range []*Node{gates.Eta, gates.Alpha} {
		if gate == nil {
			panic(fmt.Errorf("titans.%s: want eta and alpha for the %d complete chunks, got nil", op, chunks))
		}
		if gd := gate.Shape().Dimensions; gate.Rank() != 3 || gd[0] != dims[0] || gd[1] != dims[1] || gd[2] != chunks {
			panic(fmt.Errorf("titans.%s: want eta and alpha per complete chunk [B, H, chunks] = [%d %d %d], got %s", op, dims[0], dims[1], chunks, gate.Shape()))
		}
	}
}

// tpFactorSpan reports whether chunk j starts a span of tokens whose gradients are taken at one point
// (the whole written part [0, n C) with TTTBatch 0, else the TTT batch), and that span's end.
func tpFactorSpan(j, n int, cfg PyTorchConfig) (starts bool, end int) {
	start := j * cfg.ChunkSize
	if cfg.TTTBatch == 0 {
		return j == 0, n * cfg.ChunkSize
	}
	return start%cfg.TTTBatch == 0, min(start+cfg.TTTBatch, n*cfg.ChunkSize)
}

// ChunkedPyTorch is the tp-mode memory op. q, k, v [B, H, T, Dh]; gates.Theta [B, H, T]; gates.Eta and
// gates.Alpha [B, H, n] with n = floor(T / C) the complete chunks (nil when n = 0); st: MLP weights then
// gamma, and their momenta; base: the weights the gradients are taken at when cfg.TTTBatch = 0 (ignored
// otherwise). It returns y [B, H, T, Dh], the state after the last complete chunk (a last partial chunk
// is read but not written) and introspection scalars.
//
// Layout for the backend: no per-chunk ops. Per span of chunks whose gradients share one point (all n
// chunks with TTTBatch 0, else each TTT batch) the rank-1 factors p_t, r_t of every token come from one
// batched pass (tpGradFactors) and the chunk sums G_j = sum_t theta_t p_t^T r_t from one product batched
// over [B, H, chunk] (chunkSums). The recurrence S_j = eta_j S_{j-1} - G_j, W_j = (1 - alpha_j) W_{j-1} +
// S_j is linear with scalar gates, so every W_j of a block of up to 32 chunks comes from one product
// with the block's gate matrix (tpScan). The reads are one batched pass too (readShifted).
func ChunkedPyTorch(q, k, v *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) (y *Node, final State, stats Stats) {
	checkInputs("ChunkedPyTorch", q, k, v, []*Node{gates.Theta}, st)
	checkTP("ChunkedPyTorch", q, gates, st, base, cfg)
	dims := q.Shape().Dimensions
	time, c := dims[2], cfg.ChunkSize
	n := time / c
	w := append([]*Node(nil), st.W...)
	s := append([]*Node(nil), st.S...)
	weights := make([][]*Node, len(w)) // weights[l]: W_j of layer l for j = 0..n, in pieces [B, H, m, in, out]
	for l := range w {
		weights[l] = []*Node{InsertAxes(w[l], 2)}
	}
	var losses, thetas, clamped []*Node
	span := func(x *Node, from, to int) *Node {
		if from == 0 && to == x.Shape().Dimensions[2] {
			return x
		}
		return SliceAxis(x, 2, AxisRange(from, to))
	}
	for first := 0; first < n; {
		last := n // chunks [first, last) share the point of their gradients
		at := base
		if cfg.TTTBatch > 0 {
			last, at = min(first+cfg.TTTBatch/c, n), w
		}
		from, to := first*c, last*c
		ps, rs, loss := tpGradFactors(at, span(k, from, to), span(v, from, to), cfg.NormEps, cfg.Autodiff)
		theta, flags := clampTheta(span(gates.Theta, from, to), ps, rs, cfg.GradClamp)
		losses, thetas, clamped = append(losses, loss), append(thetas, theta), append(clamped, flags)
		// The closed-form scan costs O(m^2) per span of m chunks: long spans run as blocks (scanBlock),
		// the state carried from block to block.
		m := last - first
		block := scanBlock(m)
		pieces := func(x *Node) []*Node { // [B, H, m, ...] -> m/block x [B, H, block, ...]
			if block == m {
				return []*Node{x}
			}
			d := x.Shape().Dimensions
			return layers.SplitAxis(Reshape(x, append([]int{d[0], d[1], m / block, block}, d[3:]...)...), 2)
		}
		etas, alphas := pieces(span(gates.Eta, first, last)), pieces(span(gates.Alpha, first, last))
		sums := make([][]*Node, len(w))
		for l := range w {
			sums[l] = pieces(chunkSums(ps[l], rs[l], theta, c))
		}
		for b := range etas {
			scan := newTPScan(etas[b], alphas[b], cfg.Valid, first+b*block, c)
			for l := range w {
				var all *Node
				all, w[l], s[l] = scan.apply(w[l], s[l], sums[l][b])
				weights[l] = append(weights[l], all)
			}
		}
		first = last
	}
	final = State{W: w, S: s}
	for l := range weights {
		weights[l] = []*Node{concatAxis(weights[l], 2)}
	}
	return readShifted(weights, q, c, cfg.NormEps), final, tpStats(losses, thetas, clamped, gates, final)
}

// maxScanBlock bounds the chunks tpScan takes at once (its cost is quadratic in them; up to 32 chunks
// one product is faster than carrying the state between blocks, measured at T = 2048, C = 64). Tests
// lower it to cover the blocked path.
var maxScanBlock = 32

// scanBlock is the number of chunks tpScan takes at once in a span of m chunks: all of them up to
// maxScanBlock, else the largest divisor of m in [maxScanBlock/2, maxScanBlock] (or all of them when
// there is none).
func scanBlock(m int) int {
	if m <= maxScanBlock {
		return m
	}
	for b := maxScanBlock; b >= (maxScanBlock+1)/2; b-- {
		if m%b == 0 {
			return b
		}
	}
	return m
}

func concatAxis(parts []*Node, axis int) *Node {
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, axis)
}

// tpScan is the chunk recurrence of the tp op over a span of m chunks in closed form. With E_a =
// prod_{j<=a} eta_j, K_a = prod_{j<=a} (1 - alpha_j) and (L_X)_ab = X_a / X_b for b <= a (0 above):
//
//	S_a = E_a S_0 - sum_{i<=a} (L_E)_ai G_i
//	W_a = K_a W_0 + c_a S_0 - sum_{i<=a} A_ai G_i,   A = L_K L_E, c = L_K E
//
// (the same algebra as the paper mode's in-chunk form, chunk.go). The ratios are exp of differences of
// prefix sums of log gates. Each is one product of a coefficient matrix with [W_0; S_0; G_1 .. G_m]
// (flattened weights): wCoef = [K, c, -A] [B, H, m, m+2], sCoef = [0, E, -L_E].
type tpScan struct {
	wCoef, sCoef *Node
	m            int
	selectLast   *Node // nil, or with a Valid count the one-hot [m+1] of the state to return (W_0 .. W_m)
}

func newTPScan(eta, alpha, valid *Node, first, chunk int) *tpScan {
	floor := logFloor(eta.DType())
	cumE := CumSum(Log(MaxScalar(eta, floor)), -1)
	cumK := CumSum(Log(MaxScalar(OneMinus(alpha), floor)), -1)
	lE, lK := ratioMatrix(cumE), ratioMatrix(cumK)
	e, kk := InsertAxes(Exp(cumE), -1), InsertAxes(Exp(cumK), -1) // [B, H, m, 1]
	m := eta.Shape().Dimensions[2]
	sc := &tpScan{m: m}
	sc.wCoef = Concatenate([]*Node{kk, mm(lK, e), Neg(mm(lK, lE))}, -1)
	sc.sCoef = Concatenate([]*Node{ZerosLike(e), e, Neg(lE)}, -1)
	if valid == nil {
		sc.sCoef = SliceAxis(sc.sCoef, 2, AxisElem(m-1)) // only the last momentum is needed
	} else { // the last chunk written is the last one complete within the valid tokens
		g := eta.Graph()
		written := Sub(Div(valid, Const(g, int32(chunk))), Const(g, int32(first)))
		written = ClipScalar(written, 0, float64(m))
		idx := Iota(g, shapes.Make(dtypes.Int32, m+1), 0)
		sc.selectLast = ConvertDType(Equal(idx, written), eta.DType())
	}
	return sc
}

// apply returns W_1 .. W_m [B, H, m, in, out] and the span's final weights and momentum, from the span's
// start state w0, s0 [B, H, in, out] and the chunk sums G [B, H, m, in, out].
func (sc *tpScan) apply(w0, s0, sums *Node) (all, w, s *Node) {
	d := sums.Shape().Dimensions
	flat := func(x *Node) *Node { return Reshape(x, d[0], d[1], -1, d[3]*d[4]) }
	terms := Concatenate([]*Node{flat(w0), flat(s0), flat(sums)}, 2) // [B, H, m+2, in*out]
	products := mmShared([]*Node{sc.wCoef, sc.sCoef}, terms)
	all = Reshape(products[0], d...)
	sAll := Reshape(products[1], d[0], d[1], -1, d[3], d[4])
	if sc.selectLast == nil {
		return all, Squeeze(SliceAxis(all, 2, AxisElem(sc.m-1)), 2), Squeeze(sAll, 2)
	}
	pick := func(x0, xs *Node) *Node {
		stacked := Concatenate([]*Node{InsertAxes(x0, 2), xs}, 2)
		return ReduceSum(Mul(stacked, Reshape(sc.selectLast, 1, 1, sc.m+1, 1, 1)), 2)
	}
	return all, pick(w0, all), pick(s0, sAll)
}

// chunkSums returns sum_{t in chunk j} theta_t p_t^T r_t [B, H, m, in, out] for the factors p [B, H, m C,
// in], r [B, H, m C, out] and theta [B, H, m C]: one product batched over [B, H, m]. A factor p of width 1
// (gamma's, all ones) makes it a sum over the chunk.
func chunkSums(p, r, theta *Node, c int) *Node {
	pd, rd := p.Shape().Dimensions, r.Shape().Dimensions
	batch, heads, m := pd[0], pd[1], pd[2]/c
	if pd[3] == 1 {
		sum := ReduceSum(Reshape(Mul(r, InsertAxes(theta, -1)), batch, heads, m, c, rd[3]), 3)
		return InsertAxes(sum, 3)
	}
	pw := Reshape(Mul(p, InsertAxes(theta, -1)), batch, heads, m, c, pd[3])
	return tmm(pw, Reshape(r, batch, heads, m, c, rd[3]))
}

// readShifted returns y_t = M_{W_{floor((t+1)/C)}}(q_t) [B, H, T, Dh] given weights[l][0] = W_j of layer l
// stacked over j = 0..floor(T/C), [B, H, n+1, in, out]: q shifted right by one token (a zero token first) and padded to whole chunks is
// read chunk j with W_j, one pass batched over [B, H, chunk]; the first row and the padding are dropped.
func readShifted(weights [][]*Node, q *Node, c int, eps float64) *Node {
	dims := q.Shape().Dimensions
	batch, heads, time, dh := dims[0], dims[1], dims[2], dims[3]
	reads := (time + c) / c // chunks of the shifted sequence of T+1 rows
	zero := ScalarZero(q.Graph(), q.DType())
	shifted := Pad(q, zero, PadAxis{}, PadAxis{}, PadAxis{Start: 1, End: reads*c - time - 1}, PadAxis{})
	shifted = Reshape(shifted, batch, heads, reads, c, dh)
	ws := make([]*Node, len(weights))
	for l, wl := range weights {
		ws[l] = wl[0] // [B, H, n+1, in, out]
		if ws[l].Shape().Dimensions[2] > reads {
			ws[l] = SliceAxis(ws[l], 2, AxisRange(0, reads))
		}
	}
	out := Reshape(ReadTP(ws, shifted, eps), batch, heads, reads*c, dh)
	return SliceAxis(out, 2, AxisRange(1, time+1))
}

// tpStats is opStats for the tp op, whose calls shorter than a chunk write nothing (no losses, no eta
// or alpha): those report zeros.
func tpStats(losses, thetas, clamped []*Node, gates Gates, final State) Stats {
	if len(losses) > 0 {
		return opStats(losses, thetas, clamped, gates, final)
	}
	zero := ScalarZero(gates.Theta.Graph(), gates.Theta.DType())
	stats := Stats{Surprise: zero, Theta: zero, Eta: zero, Alpha: zero, ClampedFraction: zero}
	for _, w := range final.W {
		stats.WeightNorm = append(stats.WeightNorm, ReduceAllMean(Sqrt(ReduceSum(Square(w), -1, -2))))
	}
	return stats
}

// chunkGate is the gate of chunk j, [B, H, 1, 1] to scale weights [B, H, in, out].
func chunkGate(gate *Node, j int) *Node {
	return InsertAxes(SliceAxis(gate, 2, AxisElem(j)), -1)
}

// NaivePyTorch is the token-by-token reference of ChunkedPyTorch with the same semantics: each token's inner
// gradient is a full matrix from graph.Gradient (perTokenGradientsTP) at the base weights or its TTT
// batch's start weights, summed one token at a time; the weights after every chunk are kept, and then
// each token t reads W_{floor((t+1)/C)} on its own.
func NaivePyTorch(q, k, v *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) (y *Node, final State) {
	checkInputs("NaivePyTorch", q, k, v, []*Node{gates.Theta}, st)
	checkTP("NaivePyTorch", q, gates, st, base, cfg)
	time, c := q.Shape().Dimensions[2], cfg.ChunkSize
	n := time / c
	weights := [][]*Node{append([]*Node(nil), st.W...)} // weights[j] = W_j
	s := append([]*Node(nil), st.S...)
	var grads []*Node
	var theta *Node
	spanStart := 0
	for j := 0; j < n; j++ {
		prev := weights[j]
		if starts, end := tpFactorSpan(j, n, cfg); starts {
			at := prev
			if cfg.TTTBatch == 0 {
				at = base
			}
			kk, vv := SliceAxis(k, 2, AxisRange(j*c, end)), SliceAxis(v, 2, AxisRange(j*c, end))
			grads = perTokenGradientsTP(at, kk, vv, cfg.NormEps)
			theta = clampFullGradients(SliceAxis(gates.Theta, 2, AxisRange(j*c, end)), grads, cfg.GradClamp)
			spanStart = j * c
		}
		sum := make([]*Node, len(prev))
		for t := j*c - spanStart; t < (j+1)*c-spanStart; t++ {
			th := InsertAxes(SliceAxis(theta, 2, AxisElem(t)), -1) // [B, H, 1, 1]
			for l := range prev {
				term := Mul(th, Squeeze(SliceAxis(grads[l], 2, AxisElem(t)), 2))
				if sum[l] == nil {
					sum[l] = term
				} else {
					sum[l] = Add(sum[l], term)
				}
			}
		}
		eta, keep := chunkGate(gates.Eta, j), OneMinus(chunkGate(gates.Alpha, j))
		next := make([]*Node, len(prev))
		for l := range prev {
			sNew := Sub(Mul(eta, s[l]), sum[l])
			next[l] = tpWrite(cfg, j, Add(Mul(keep, prev[l]), sNew), prev[l])
			s[l] = tpWrite(cfg, j, sNew, s[l])
		}
		weights = append(weights, next)
	}
	var ys []*Node
	for t := 0; t < time; t++ {
		ys = append(ys, ReadTP(weights[(t+1)/c], SliceAxis(q, 2, AxisElem(t)), cfg.NormEps))
	}
	return concatTime(ys), State{W: weights[n], S: s}
}

// perTokenGradientsTP returns grad mean_d (M(k_t) - v_t)_d^2 of the residual-norm memory for every token
// and every weight (MLP layers, then gamma) as full matrices [B, H, n, in, out], by graph.Gradient with
// respect to per-token copies of the weights.
func perTokenGradientsTP(ws []*Node, k, v *Node, eps float64) []*Node {
	n := k.Shape().Dimensions[2]
	perToken := make([]*Node, len(ws))
	for l, w := range ws {
		d := w.Shape().Dimensions
		perToken[l] = BroadcastToDims(InsertAxes(w, 2), d[0], d[1], n, d[2], d[3])
	}
	h := k
	for l := range ws[:len(ws)-1] {
		if l > 0 {
			h = gelu(h)
		}
		h = Einsum("bhni,bhnio->bhno", h, perToken[l])
	}
	nhat, _ := layerNorm(h, eps)
	gamma := Squeeze(perToken[len(ws)-1], 3) // [B, H, n, Dh]
	loss := ReduceAllSum(ReduceMean(Square(Sub(Add(k, Mul(nhat, OnePlus(gamma))), v)), -1))
	return Gradient(loss, perToken...)
}

// poolChunks is the mean of x [B, T, D] over each complete chunk of n tokens from the start: [B, T/n, D]
// (nil when T < n; a last partial chunk has no gates, it is not written).
func poolChunks(x *Node, n int) *Node {
	dims := x.Shape().Dimensions
	batch, time, width := dims[0], dims[1], dims[2]
	full := time / n
	if full == 0 {
		return nil
	}
	body := SliceAxis(x, 1, AxisRange(0, full*n))
	return ReduceMean(Reshape(body, batch, full, n, width), 2)
}
