package titans

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// Naive is the token-by-token reference of the memory with the same mini-batch semantics as Chunked:
// the sequence is cut into chunks of cfg.ChunkSize tokens from the start of the call, every token's
// inner gradient is taken at the weights of the start of its chunk, and then, token by token
// (paper Eqs. 13-14),
//
//	S_t = eta_t S_{t-1} - theta_t grad ||M_{W0}(k_t) - v_t||^2
//	W_t = (1 - alpha_t) W_{t-1} + S_t
//	y_t = M_{W_t}(q_t)
//
// With ChunkSize 1 the chunk start is the previous token, so this is the exact per-token recurrence.
// With a Miras objective cfg.Bias the gradient is that of its loss; with a retention cfg.Retention other
// than l2, W above is the accumulator A of the steps, the memory's weights are its map phi(A) (miras.go),
// the gradients are taken at phi(A_{chunk start}) and y_t reads the weights Retention.tokenWeights gives:
// phi(A_t) at a chunk's last token (and every token with ExactReads), else the chunk-boundary form.
// The per-token gradients are full matrices from graph.Gradient (perTokenGradients), independent of the
// rank-1 closed form Chunked uses. Shapes as in Chunked.
func Naive(q, k, v *Node, gates Gates, st State, cfg OpConfig) (y *Node, final State) {
	y, bounds := naiveWithBoundaries(q, k, v, gates, st, cfg)
	return y, bounds[len(bounds)-1]
}

// naiveWithBoundaries is Naive returning the state at every chunk boundary, as chunkedWithBoundaries.
func naiveWithBoundaries(q, k, v *Node, gates Gates, st State, cfg OpConfig) (y *Node, bounds []State) {
	checkInputs("Naive", q, k, v, perTokenGates(gates), st)
	time := q.Shape().Dimensions[2]
	w := append([]*Node(nil), st.W...)
	s := append([]*Node(nil), st.S...)
	bounds = []State{st}
	var ys []*Node
	for _, b := range chunkBounds(time, cfg.ChunkSize) {
		part := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(b[0], b[1])) }
		var delta *Node
		if gates.Delta != nil {
			delta = part(gates.Delta)
		}
		// At the chunk-start weights; w holds the accumulators A (= the weights for the l2 retention).
		a0 := append([]*Node(nil), w...)
		grads := biasPerTokenGradients(cfg.Retention.weights(a0), part(k), part(v), cfg.Bias, delta)
		theta := clampFullGradients(part(gates.Theta), grads, cfg.GradClamp)
		for t := 0; t < b[1]-b[0]; t++ {
			gate := func(x *Node) *Node { return InsertAxes(SliceAxis(x, 2, AxisElem(t)), -1) } // [B, H, 1, 1]
			eta, beta := gate(part(gates.Eta)), OneMinus(gate(part(gates.Alpha)))
			th := gate(theta)
			for l := range w {
				u := Squeeze(SliceAxis(grads[l], 2, AxisElem(t)), 2)
				s[l] = Sub(Mul(eta, s[l]), Mul(th, u))
				w[l] = Add(Mul(beta, w[l]), s[l])
			}
			read := cfg.Retention.tokenWeights(a0, w, t == cfg.ChunkSize-1) // miras_chunk.go
			_, zs := mlpForward(read, SliceAxis(q, 2, AxisElem(b[0]+t)))
			ys = append(ys, zs[len(zs)-1])
		}
		bounds = append(bounds, State{W: append([]*Node(nil), w...), S: append([]*Node(nil), s...)})
	}
	return concatTime(ys), bounds
}

// clampFullGradients folds the per-token gradient-norm clamp c (0 = off) into theta [B, H, n], given
// the per-token gradients as full matrices [B, H, n, in, out] (the references' form).
func clampFullGradients(theta *Node, grads []*Node, c float64) *Node {
	if c <= 0 {
		return theta
	}
	var sq *Node
	for _, g := range grads {
		term := ReduceSum(Square(g), -1, -2)
		if sq == nil {
			sq = term
		} else {
			sq = Add(sq, term)
		}
	}
	return Mul(theta, clampScale(sq, c))
}

// Read evaluates the memory with fixed weights ws on x [B, H, n, in]: M_W(x), no update.
func Read(ws []*Node, x *Node) *Node {
	_, zs := mlpForward(ws, x)
	return zs[len(zs)-1]
}
