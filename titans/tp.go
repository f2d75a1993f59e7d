package titans

import (
	"fmt"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// The tp compatibility mode (Config.Mode = "tp") reproduces the behaviour of the widely used PyTorch
// port titans-pytorch, which differs from the paper in four ways (see the package doc). This file holds
// its memory form and its op; the paper mode is chunk.go and naive.go.
//
// Memory. The MLP (same layers as the paper mode) is wrapped in a residual LayerNorm:
//
//	M(x) = x + LN(MLP(x)) * (1 + gamma),   LN(z) = (z - mean(z)) / sqrt(var(z) + eps)
//
// gamma [Dh] per head is one more fast weight: it is trained at test time with the MLP weights and
// carried in the state as the last entry of State.W / State.S, shaped [B, H, 1, Dh] so that its
// gradient is a rank-1 factor like the others (p = 1, r = dl/dgamma).
//
// Op (TTT mini-batches of Q tokens, chunks of n tokens, Q a multiple of n, both cut from the call start):
//
//	G_j = sum_{t in chunk j} theta_t grad l(M_{W_b}; x_t)     W_b: the weights at the start of t's TTT batch
//	S_j = eta_j S_{j-1} - G_j
//	W_j = (1 - alpha_j) W_{j-1} + S_j
//	y_t = M_{W_{j-1}}(q_t)                                   t in chunk j: the weights before its chunk's write
//
// eta_j, alpha_j are one value per chunk (the layer computes them from the chunk's mean-pooled input),
// theta_t one per token. With Q = n every gradient is taken at its chunk's start weights, as in the paper
// mode, but the read still comes before the write.

// tpForward evaluates the residual-norm memory on x [B, H, n, Dh] with ws = MLP weights then gamma
// [B, H, 1, Dh]. It returns the MLP's layer inputs, pre-activations and hidden sigmoids (as
// mlpForwardSig), the normalised output nhat, the normaliser sd = sqrt(var + eps) [B, H, n, 1] and
// M(x).
func tpForward(ws []*Node, x *Node, eps float64) (ps, zs, sigs []*Node, nhat, sd, out *Node) {
	mlp, gamma := ws[:len(ws)-1], ws[len(ws)-1]
	ps, zs, sigs = mlpForwardSig(mlp, x)
	nhat, sd = layerNorm(zs[len(zs)-1], eps)
	out = Add(x, Mul(nhat, OnePlus(gamma)))
	return ps, zs, sigs, nhat, sd, out
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
	_, _, _, _, _, out := tpForward(ws, x, eps)
	return out
}

// tpGradFactors is gradFactors for the residual-norm memory: rank-1 factors p_t^T r_t of the per-token
// gradient of ||M(k_t) - v_t||^2 for every MLP layer and, last, for gamma (p = 1 [B, H, n, 1],
// r = 2 e * nhat), and the per-token loss.
//
// With e = M(k) - v and a = 2 e (1 + gamma), the LayerNorm backward is
// dl/dz = (a - mean(a) - nhat mean(a nhat)) / sd; from there the MLP backward is gradFactors'.
func tpGradFactors(ws []*Node, k, v *Node, eps float64, autodiff bool) (ps, rs []*Node, loss *Node) {
	mlp, gamma := ws[:len(ws)-1], ws[len(ws)-1]
	dims := k.Shape().Dimensions
	ones := Ones(k.Graph(), shapes.Make(k.DType(), dims[0], dims[1], dims[2], 1))
	if autodiff {
		perToken := BroadcastToDims(gamma, dims...) // each token's own copy of gamma
		var zs []*Node
		ps, zs, _ = mlpForwardSig(mlp, k)
		nhat, _ := layerNorm(zs[len(zs)-1], eps)
		loss = ReduceSum(Square(Sub(Add(k, Mul(nhat, OnePlus(perToken))), v)), -1)
		rs = Gradient(ReduceAllSum(loss), append(zs, perToken)...)
		return append(ps, ones), rs, loss
	}
	ps, zs, sigs, nhat, sd, out := tpForward(ws, k, eps)
	residual := Sub(out, v)
	loss = ReduceSum(Square(residual), -1)
	twice := MulScalar(residual, 2)
	a := Mul(twice, OnePlus(gamma))
	dz := Div(Sub(Sub(a, ReduceAndKeep(a, ReduceMean, -1)), Mul(nhat, ReduceAndKeep(Mul(a, nhat), ReduceMean, -1))), sd)
	last := len(mlp) - 1
	rs = make([]*Node, len(ws))
	rs[last] = dz
	for l := last; l > 0; l-- {
		back := Einsum("bhno,bhio->bhni", rs[l], mlp[l])
		rs[l-1] = Mul(back, siluPrime(zs[l-1], sigs[l-1]))
	}
	rs[len(ws)-1] = Mul(twice, nhat)
	return append(ps, ones), rs, loss
}

// TPConfig configures the tp ops.
type TPConfig struct {
	ChunkSize int     // n: tokens per chunk; one eta and alpha per chunk, reads before the chunk's write
	TTTBatch  int     // Q: tokens per TTT mini-batch (a multiple of ChunkSize); gradients at its start weights
	GradClamp float64 // per-token clamp of the inner-gradient norm, as OpConfig.GradClamp
	NormEps   float64 // epsilon of the memory's LayerNorm
	Autodiff  bool    // inner-gradient factors by graph.Gradient instead of the closed form
}

func checkTP(op string, q *Node, gates Gates, st State, cfg TPConfig) {
	if cfg.ChunkSize < 1 || cfg.TTTBatch < cfg.ChunkSize || cfg.TTTBatch%cfg.ChunkSize != 0 {
		panic(fmt.Errorf("titans.%s: ttt batch %d must be a positive multiple of chunk size %d", op, cfg.TTTBatch, cfg.ChunkSize))
	}
	if len(st.W) < 2 {
		panic(fmt.Errorf("titans.%s: want the MLP weights then gamma in the state, got %d weight tensors", op, len(st.W)))
	}
	dims := q.Shape().Dimensions
	chunks := len(chunkBounds(dims[2], cfg.ChunkSize))
	for _, gate := range []*Node{gates.Eta, gates.Alpha} {
		if gd := gate.Shape().Dimensions; gate.Rank() != 3 || gd[0] != dims[0] || gd[1] != dims[1] || gd[2] != chunks {
			panic(fmt.Errorf("titans.%s: want eta and alpha per chunk [B, H, chunks] = [%d %d %d], got %s", op, dims[0], dims[1], chunks, gate.Shape()))
		}
	}
}

// ChunkedTP is the tp-mode memory op. q, k, v [B, H, T, Dh]; gates.Theta [B, H, T]; gates.Eta and
// gates.Alpha [B, H, C] with C the number of chunks; st: MLP weights then gamma, and their momenta.
// It returns y [B, H, T, Dh], the state after the last token and introspection scalars. Per-token
// gradients are rank-1 factors (tpGradFactors) summed per chunk with one matmul.
func ChunkedTP(q, k, v *Node, gates Gates, st State, cfg TPConfig) (y *Node, final State, stats Stats) {
	checkInputs("ChunkedTP", q, k, v, []*Node{gates.Theta}, st)
	checkTP("ChunkedTP", q, gates, st, cfg)
	w := append([]*Node(nil), st.W...)
	s := append([]*Node(nil), st.S...)
	var ys, losses, thetas, clamped []*Node
	chunk := 0
	for _, batch := range chunkBounds(q.Shape().Dimensions[2], cfg.TTTBatch) {
		part := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(batch[0], batch[1])) }
		ps, rs, loss := tpGradFactors(w, part(k), part(v), cfg.NormEps, cfg.Autodiff) // at the batch-start weights
		theta, wasClamped := clampTheta(part(gates.Theta), ps, rs, cfg.GradClamp)
		losses, thetas, clamped = append(losses, loss), append(thetas, theta), append(clamped, wasClamped)
		for _, c := range chunkBounds(batch[1]-batch[0], cfg.ChunkSize) {
			in := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(c[0], c[1])) }
			ys = append(ys, ReadTP(w, SliceAxis(q, 2, AxisRange(batch[0]+c[0], batch[0]+c[1])), cfg.NormEps))
			eta, keep := chunkGate(gates.Eta, chunk), OneMinus(chunkGate(gates.Alpha, chunk))
			weighted := InsertAxes(in(theta), -1)
			for l := range w {
				update := Einsum("bhsi,bhso->bhio", Mul(in(ps[l]), weighted), in(rs[l]))
				s[l] = Sub(Mul(eta, s[l]), update)
				w[l] = Add(Mul(keep, w[l]), s[l])
			}
			chunk++
		}
	}
	final = State{W: w, S: s}
	return concatTime(ys), final, opStats(losses, thetas, clamped, gates, final)
}

// chunkGate is the gate of chunk j, [B, H, 1, 1] to scale weights [B, H, in, out].
func chunkGate(gate *Node, j int) *Node {
	return InsertAxes(SliceAxis(gate, 2, AxisElem(j)), -1)
}

// NaiveTP is the token-by-token reference of ChunkedTP with the same semantics: each token's inner
// gradient is a full matrix from graph.Gradient at its TTT batch's start weights (perTokenGradientsTP),
// accumulated one token at a time, and each token reads the memory on its own.
func NaiveTP(q, k, v *Node, gates Gates, st State, cfg TPConfig) (y *Node, final State) {
	checkInputs("NaiveTP", q, k, v, []*Node{gates.Theta}, st)
	checkTP("NaiveTP", q, gates, st, cfg)
	w := append([]*Node(nil), st.W...)
	s := append([]*Node(nil), st.S...)
	var ys []*Node
	chunk := 0
	for _, batch := range chunkBounds(q.Shape().Dimensions[2], cfg.TTTBatch) {
		part := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(batch[0], batch[1])) }
		grads := perTokenGradientsTP(w, part(k), part(v), cfg.NormEps)
		theta := clampFullGradients(part(gates.Theta), grads, cfg.GradClamp)
		for _, c := range chunkBounds(batch[1]-batch[0], cfg.ChunkSize) {
			for t := batch[0] + c[0]; t < batch[0]+c[1]; t++ {
				ys = append(ys, ReadTP(w, SliceAxis(q, 2, AxisElem(t)), cfg.NormEps))
			}
			sum := make([]*Node, len(w))
			for t := c[0]; t < c[1]; t++ {
				th := InsertAxes(SliceAxis(theta, 2, AxisElem(t)), -1) // [B, H, 1, 1]
				for l := range w {
					term := Mul(th, Squeeze(SliceAxis(grads[l], 2, AxisElem(t)), 2))
					if sum[l] == nil {
						sum[l] = term
					} else {
						sum[l] = Add(sum[l], term)
					}
				}
			}
			eta, keep := chunkGate(gates.Eta, chunk), OneMinus(chunkGate(gates.Alpha, chunk))
			for l := range w {
				s[l] = Sub(Mul(eta, s[l]), sum[l])
				w[l] = Add(Mul(keep, w[l]), s[l])
			}
			chunk++
		}
	}
	return concatTime(ys), State{W: w, S: s}
}

// perTokenGradientsTP returns grad ||M(k_t) - v_t||^2 of the residual-norm memory for every token and
// every weight (MLP layers, then gamma) as full matrices [B, H, n, in, out], by graph.Gradient with
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
			h = silu(h)
		}
		h = Einsum("bhni,bhnio->bhno", h, perToken[l])
	}
	nhat, _ := layerNorm(h, eps)
	gamma := Squeeze(perToken[len(ws)-1], 3) // [B, H, n, Dh]
	loss := ReduceAllSum(Square(Sub(Add(k, Mul(nhat, OnePlus(gamma))), v)))
	return Gradient(loss, perToken...)
}

// poolChunks is the mean of x [B, T, D] over each chunk of n tokens from the start (the last chunk may
// be shorter): [B, C, D].
func poolChunks(x *Node, n int) *Node {
	dims := x.Shape().Dimensions
	batch, time, width := dims[0], dims[1], dims[2]
	full := time / n
	var parts []*Node
	if full > 0 {
		body := SliceAxis(x, 1, AxisRange(0, full*n))
		parts = append(parts, ReduceMean(Reshape(body, batch, full, n, width), 2))
	}
	if time%n != 0 {
		parts = append(parts, ReduceAndKeep(SliceAxis(x, 1, AxisRange(full*n, time)), ReduceMean, 1))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 1)
}
