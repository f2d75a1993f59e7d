package deltanet

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
)

// Chunked is the chunkwise-parallel form of Naive (same arguments and results, plus chunkSize C).
//
// Within a chunk (positions r, i = 1..C) with incoming state S:
//
//	G_r = sum_{i<=r} g_i;  Gamma_ri = exp(G_r - G_i) for i <= r, else 0
//	A = strictly-lower(diag(beta) (Gamma .* K K^T));  T = (I + A)^-1
//	U = T diag(beta) V;  W = T diag(beta) (K .* exp(G))
//	V' = U - W S
//	O = scale (Q .* exp(G)) S + (scale Q K^T .* Gamma) V'
//	S <- exp(G_C) S + (K .* exp(G_C - G))^T V'
//
// (the WY form of the delta rule, Yang et al. 2025, sec. 3.3). The decay factors are products of
// alpha_t = exp(g_t) <= 1 (decay.go), so strong decay underflows to zero instead of overflowing and no
// exp of a positive number is ever formed. Without the delta rule V' = V. T is padded to a multiple of
// C with g = beta = k = v = q = 0, steps that leave S unchanged.
//
// Everything but the state recurrence is batched over all chunks; the recurrence over chunks is
// unrolled at graph-build time (GoMLX has no differentiable loop), ceil(T/C) steps.
func Chunked(q, k, v, beta, g, h0 *Node, scale float64, chunkSize int, opts Options) (o, ht *Node) {
	h0 = checkInputs("deltanet.Chunked", q, k, v, beta, g, h0)
	if chunkSize < 1 {
		panic(fmt.Errorf("deltanet.Chunked: chunkSize must be >= 1, got %d", chunkSize))
	}
	time := q.Shape().Dimensions[1]
	if !opts.Gate {
		g = ZerosLike(g)
	}
	// Chunk-major layout [N, B, H, C, ...] so the unrolled recurrence slices a leading axis.
	qc, kc, vc := chunkVectors(q, chunkSize), chunkVectors(k, chunkSize), chunkVectors(v, chunkSize)
	betac, gc := chunkScalars(beta, chunkSize), chunkScalars(g, chunkSize)

	decay := newChunkDecay(gc) // Gamma [N, B, H, C, C], exp(G) [N, B, H, C], ...

	u, w := vc, (*Node)(nil)
	if opts.Delta {
		u, w = wyFactors(kc, vc, betac, decay)
	}
	// K .* exp(G_C - G): how much each key's write has decayed by the end of its chunk.
	kDecayed := Mul(kc, InsertAxes(decay.tail, -1))
	chunkDecay := InsertAxes(decay.total, -1) // exp(G_C): [N, B, H, 1, 1]

	numChunks := qc.Shape().Dimensions[0]
	states := make([]*Node, numChunks)    // S entering each chunk
	corrected := make([]*Node, numChunks) // V' of each chunk
	state := h0
	for n := 0; n < numChunks; n++ {
		at := func(x *Node) *Node { return Squeeze(SliceAxis(x, 0, AxisElem(n)), 0) }
		states[n] = state
		vn := at(u)
		if opts.Delta {
			vn = Sub(vn, Einsum("bhck,bhkv->bhcv", at(w), state))
		}
		corrected[n] = vn
		state = Add(Mul(at(chunkDecay), state), Einsum("bhck,bhcv->bhkv", at(kDecayed), vn))
	}
	stateStack, vStack := Stack(states, 0), Stack(corrected, 0)

	// Outputs of all chunks at once: the inter-chunk part from the incoming state, the intra-chunk part
	// from the corrected values.
	qScaled := MulScalar(qc, scale)
	inter := Einsum("nbhck,nbhkv->nbhcv", Mul(qScaled, InsertAxes(decay.head, -1)), stateStack)
	scores := Mul(Einsum("nbhck,nbhdk->nbhcd", qScaled, kc), decay.gamma)
	intra := Einsum("nbhcd,nbhdv->nbhcv", scores, vStack)
	o = unchunk(Add(inter, intra), time)
	return o, state
}

// wyFactors returns U = T diag(beta) V and W = T diag(beta) (K .* exp(G)), T = (I + A)^-1 with
// A = strictly-lower(diag(beta) (Gamma .* K K^T)), for every chunk: the WY representation of the product
// of the chunk's Householder-like transitions (I - beta_t k_t k_t^T).
func wyFactors(k, v, beta *Node, decay chunkDecay) (u, w *Node) {
	chunk := k.Shape().Dimensions[3]
	betaCol := InsertAxes(beta, -1)
	gram := Einsum("nbhck,nbhdk->nbhcd", k, k)
	a := Mul(Mul(betaCol, decay.gamma), gram)
	a = Where(strictlyLowerMask(a.Graph(), a.Shape(), chunk), a, ZerosLike(a))
	t := InvertUnitLower(a)
	u = Einsum("nbhcd,nbhdv->nbhcv", t, Mul(betaCol, v))
	w = Einsum("nbhcd,nbhdk->nbhck", t, Mul(Mul(betaCol, k), InsertAxes(decay.head, -1)))
	return u, w
}

// chunkVectors maps [B, T, H, D] to [N, B, H, C, D], zero-padding time to N*C.
func chunkVectors(x *Node, chunk int) *Node {
	return TransposeAllDims(layers.Chunk(x, chunk), 1, 0, 3, 2, 4)
}

// chunkScalars maps [B, T, H] to [N, B, H, C], zero-padding time to N*C.
func chunkScalars(x *Node, chunk int) *Node {
	return TransposeAllDims(layers.Chunk(x, chunk), 1, 0, 3, 2)
}

// unchunk maps [N, B, H, C, D] back to [B, T, H, D], dropping the padding.
func unchunk(x *Node, time int) *Node {
	return layers.Unchunk(TransposeAllDims(x, 1, 0, 3, 2, 4), time)
}
