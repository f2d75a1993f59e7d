package mamba2

import (
	"fmt"

	"github.com/engramlx/engram/deltanet"
	. "github.com/gomlx/gomlx/core/graph"
)

// Chunked is the chunkwise-parallel (SSD) form of Naive: the same arguments and results, plus the
// chunk length chunkSize.
//
// Mamba2's SSM is gated linear attention with a scalar decay per head and step (Dao & Gu 2024, sec. 4-6,
// the "state space dual"): with q = C, k = B, v = dt x and log-decay g = dt A,
//
//	S_t = exp(g_t) S_{t-1} + k_t v_t^T,  y_t = S_t^T q_t     (S^T: the [N, P] transpose of Naive's S),
//
// which is exactly deltanet's gated linear attention member (Options{Gate: true}, no delta rule, scale
// 1). So Chunked runs deltanet.Chunked: within chunks everything is matrix products with the decay
// factors exp(G_r - G_i) of within-chunk cumulative log-decays, and only the state crosses chunks (see
// deltanet's doc). Without the delta rule deltanet ignores beta (its gradient is zero), so beta is a
// zero tensor here. The state is transposed between Naive's [B, H, P, N] (fla's and mamba_ssm's
// layout) and deltanet's [B, H, K, V] = [B, H, N, P] once per call.
func Chunked(x, dt, a, b, c, h0 *Node, chunkSize int) (y, ht *Node) {
	h0 = checkInputs("mamba2.Chunked", x, dt, a, b, c, h0)
	if chunkSize < 1 {
		panic(fmt.Errorf("mamba2.Chunked: chunkSize must be >= 1, got %d", chunkSize))
	}
	heads := x.Shape().Dimensions[2]
	q, k := perHead(c, heads), perHead(b, heads)
	v := Mul(x, InsertAxes(dt, -1))              // dt x: [B, T, H, P]
	g := Mul(dt, ExpandLeftToRank(a, dt.Rank())) // dt A: [B, T, H]
	beta := ZerosLike(dt)
	y, s := deltanet.Chunked(q, k, v, beta, g, transposeState(h0), 1, chunkSize, deltanet.GatedLinearAttn)
	return y, transposeState(s)
}

// transposeState swaps the last two axes of a state [B, H, a, b].
func transposeState(s *Node) *Node { return TransposeAllAxes(s, 0, 1, 3, 2) }
