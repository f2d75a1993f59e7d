// Package titans implements the neural long-term memory of "Titans: Learning to Memorize at Test Time"
// (Behrouz, Zhong, Mirrokni; arXiv 2501.00663) and its three architectures, MAC, MAG and MAL, as Mixers.
//
// # Neural memory (LMM), per head
//
// From x_t [D]: q_t, k_t, v_t = SiLU(ShortConv(x_t W_{Q,K,V})) split into H heads of Dh; q_t and k_t
// L2-normalised per head (section 4.4). Gates, one scalar per head and token:
//
//	theta_t = max_lr * sigmoid(x_t w_theta + b_theta)   inner learning rate
//	eta_t   = sigmoid(x_t w_eta + b_eta)                 momentum decay
//	alpha_t = sigmoid(x_t w_alpha + b_alpha)             forgetting
//
// The memory M is an MLP of L_M >= 1 bias-free layers mapping a row vector Dh -> E*Dh -> ... -> Dh,
// z_1 = x W_1, z_l = SiLU(z_{l-1}) W_l, M(x) = z_L (L_M = 1: M(x) = x W). Inner loss (Eq. 12) and
// update (Eqs. 13-14), retrieval (Eq. 15):
//
//	l(M; x_t) = ||M(k_t) - v_t||^2
//	S_t = eta_t S_{t-1} - theta_t grad_W l(M_{W0}; x_t)
//	W_t = (1 - alpha_t) W_{t-1} + S_t
//	y_t = M_{W_t}(q_t)
//
// W0 is the weight at the start of the token's chunk (the paper's mini-batch gradient descent,
// section 3.2): the sequence of each call is cut into chunks of ChunkSize tokens from its start, and
// all gradients of a chunk are taken at its start weights. With ChunkSize = 1, W0 = W_{t-1} and this is
// the exact per-token recurrence.
//
// Which weights a token reads: y_t reads W_t, the weights after token t's own write (and after every
// earlier token's write, in its chunk too). W_t depends on tokens <= t only, so the layer is causal;
// TestMixerChainedAndCausal checks it. MAC's retrieval h_t reads the weights at the start of t's segment.
//
// Optional: GradClamp > 0 rescales each token's inner gradient (all layers jointly) to Frobenius norm
// <= GradClamp, i.e. theta_t *= min(1, c / ||grad_t||); OutputGate multiplies the normalised read-out by
// sigmoid(x W_g) per head channel before the output projection.
//
// Inner gradient, closed form (gradFactors): with p_l the layer inputs and z_l the pre-activations at W0,
// grad_{W_l} l = p_l^T r_l, r_L = 2 (z_L - v), r_{l-1} = (r_l W_l^T) * SiLU'(z_{l-1}). For L_M = 1 it
// is 2 k^T (k W - v); for L_M = 2, grad_{W_2} = 2 SiLU(z_1)^T e and grad_{W_1} = k^T ((2 e W_2^T) *
// SiLU'(z_1)), e = M(k) - v. TestClosedFormInnerGradient holds it equal to graph.Gradient.
//
// # Parallel form (chunk.go)
//
// Inside a chunk every update is rank-1, u_i = p_i^T r_i, so momentum and weights are linear
// recurrences: with E_t = prod_{j<=t} eta_j, B_t = prod_{j<=t} (1 - alpha_j), (L_X)_ts = X_t / X_s for
// s <= t (exp of differences of prefix sums of log gates), A = L_B L_E and c = L_B E,
//
//	W_t = B_t W0 + c_t S0 - sum_{i<=t} A_ti theta_i p_i^T r_i
//
// and the read-out of a layer input h_t is h_t W_t = B_t h_t W0 + c_t h_t S0 - sum_i A_ti theta_i
// (h_t . p_i) r_i: matmuls over the chunk, no per-token weights. Chunks are unrolled at graph-build time.
// naive.go is the token-by-token reference with the same semantics (per-token gradients from
// graph.Gradient as full matrices); the tests hold them equal in float64, gradients included.
//
// # Architectures (section 4)
//
//   - LMM: the memory alone (NewLMM).
//   - MAC, memory as a context: per segment, h = M_{W0}(q) from the memory left by earlier segments,
//     y = causal attention over [persistent ; h ; segment], the memory updated with y, o = y *
//     sigmoid(LMM(y)).
//   - MAG, memory as a gate: o = W_o(RMSNorm(SWA([persistent ; x])) * sigmoid(RMSNorm(LMM(x)))).
//   - MAL, memory as a layer: o = SWA([persistent ; LMM(x)]).
//
// Persistent memory is N_p learned tokens (variable "persistent" [N_p, D]) that every attention query
// sees (as keys and values, without RoPE). The memory itself does not read them: its learned initial
// weights play the role of a memory that has (data-independently) read them.
//
// # State and streaming
//
// The carried state holds the memory weights minus their learned initial values, the momentum, the
// short-conv caches, and for MAG/MAL the attention's window cache and position. The zero state is the
// start of a sequence. Because chunks (and MAC segments) start at each call, streaming in pieces equals
// one call when the pieces are multiples of ChunkSize (SegmentSize for MAC).
//
// Forgetting decays the weights towards zero, and a deep memory without biases has zero as a fixed
// point of its inner gradient (grad W_1 carries a factor W_2, grad W_2 a factor SiLU(k W_1)), so over a
// stream much longer than 1/alpha tokens the memory fades unless the learned alpha gates approach 0. At
// the initial alpha of about 0.018, TestFloat32Stability's 2,048 random tokens leave weights of order
// 1e-27 (weight norms that print as 0 in float32); on 64-token MQAR rows the decay is 0.98^64 = 0.3.
// Titans models meant for long streams should be trained on long rows, where alpha can learn.
//
// # Introspection
//
// Every mixer implements Introspector: ApplyWithStats returns Stats (mean surprise = inner loss at the
// chunk-start weights, mean theta/eta/alpha, fraction of clamped tokens, per-layer weight norm);
// Stats.Metrics names them for a trainer's log.
//
// # The tp compatibility mode (tp.go)
//
// Config.Mode = "tp" reproduces the behaviour of the PyTorch port titans-pytorch (a behaviour reference
// only; the official code was never released). Each difference from the paper mode:
//
//  1. Gates: eta and alpha are one value per chunk, sigmoid of a projection of the chunk's mean-pooled
//     input, instead of one per token; theta stays per token.
//  2. Mini-batches: every gradient of a TTT batch of TTTBatchSize tokens (several chunks) is taken at
//     the weights of the batch's start, instead of at its chunk's start; momentum and forgetting still
//     step once per chunk, with the chunk's gradients summed (G_j = sum_t theta_t grad_t).
//  3. Memory: M(x) = x + LayerNorm(MLP(x)) * (1 + gamma), a residual around the MLP with a LayerNorm
//     (no learned shift) whose scale gamma [Dh] per head is itself a fast weight, trained at test time
//     and carried in the state ("w_gamma", "s_gamma"); its initial value is the variable "memory/gamma".
//  4. Reads: a token reads the weights before its chunk's write (after the previous chunk's), instead
//     of after its own write.
//
// Not reproduced: the port's GELU between memory layers (SiLU here, as in the paper mode), its mean
// (not sum) over the squared error (a constant factor 1/Dh on theta), attention pooling and other
// optional extras. Inner-gradient clamping and the output gate work as in the paper mode. The golden
// vectors of item 4 of the Titans issue (shared/golden/titans) do not exist yet, so no test holds this
// mode to the port's numbers; the tests hold it to its own equations (TestTPChunkedEqualsNaive,
// TestTPReadBeforeWrite, TestTPClosedFormInnerGradient).
//
// Shape legend: B batch, T time, D model width, H heads, Dh head width, n chunk length, E expansion.
package titans
