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
// # Miras: attentional bias and retention (miras.go)
//
// "It's All Connected" (Behrouz, Razaviyayn, Zhong, Mirrokni; arXiv 2504.13173, v1) reads the memory
// update as online optimisation of an inner objective (the attentional bias) plus a retention term.
// Config.AttentionalBias and Config.Retention choose them for the paper-mode memory (mode titans_pytorch
// keeps its l2 memory); empty means l2 for both and runs exactly the Titans code above (outputs
// bit-identical to before the option existed, checked by hashing them). Equation numbers are v1's, as
// an equation digest of the paper (not the PDF itself) gives them; the definitions were checked against
// the reductions and hand examples in miras_test.go. With e = M(k_t) - v_t and |x|_s = sqrt(x^2 + eps),
// eps = 1e-6 (the paper's smooth |x| for stable gradients):
//
//	l2:    l = ||e||^2                                  dl/dM = 2 e
//	lp:    l = sum_j (|e_j|_s^p - eps^{p/2})            dl/dM = p e |e|_s^{p-2}          (Eqs. 10-11)
//	huber: ||e|| <= delta_t: l = ||e||^2                dl/dM = 2 e                     (Eq. 16 variant 3,
//	       otherwise: l = 2 delta_t sum_j |e_j|_s - delta_t^2,  dl/dM = 2 delta_t e / |e|_s   Yaad Eq. 26)
//
// The factor 2 keeps Engram's l2 scale (||e||^2, not 1/2 ||e||^2), so lp with p = 2 and Huber with a
// threshold above every residual are the Titans memory exactly; the branches are switched per token on
// the residual's l2 norm (variant 3) and the l1 branch uses the smooth sign e / |e|_s. Only the last
// layer's factor r_L of the closed-form inner gradient changes (r_L = dl/dM); the back-propagation through
// the MLP is Titans'. delta_t is fixed (HuberDelta) or, with HuberLearned, data-dependent per head and
// token: softplus(x w_delta + b_delta + softplus^-1(HuberDelta)) (weights zero-mean, so it starts near
// HuberDelta).
//
// Retention: the decayed, momentum-driven steps accumulate in A (the "w{l}" state, learned initial value
// "memory/w{l}"), S_t = eta_t S_{t-1} - theta_t grad l(W; x_t), A_t = (1 - alpha_t) A_{t-1} + S_t, and the
// memory's weights are W = phi(A) per layer and head:
//
//	l2:          W = A                                                  (Titans)
//	lq:          W = A / ||A||_q^{q-2}, ||A||_q^q = sum_ij |A_ij|_s^q     (Eq. 24, Moneta; q = 2: W = A)
//	kl:          W = c softmax(A) over each column's inputs, c = sqrt(in) (Eqs. 21, 27, Memora)
//	elastic_net: W = sign(A) max(0, |A| - gamma)                        (Eq. 23, the FTRL form)
//
// KL: Memora's W_t = softmax(a_t log W_{t-1} - eta_t grad) is a linear recurrence in the logits, since
// log softmax(L) = L - logsumexp(L) and softmax ignores the per-column constant; so A holds the logits and
// the (1 - alpha) decay is the paper's a_t. The paper's scale c (a constant, 1 in its notation) is sqrt(in)
// here so that weights start at the N(0, 1/in) scale of the other retentions. Elastic net: gamma =
// ElasticL1 is the l1 weight, its l2 weight is the alpha_t decay (so gamma = 0 is the l2 retention).
//
// Chunked form (miras_chunk.go): all gradients of a chunk are taken at W0 = phi(A0) (the paper's parallel
// training, Eqs. 28-29), so A_t is the same linear recurrence as Titans' weights. What a token reads has
// two forms. The paper applies the non-linear map only at chunk boundaries (Memora: a "lag" token per
// chunk, linear steps inside; its section on parallelizable training was not reachable here beyond that
// digest, so the form below is reasoned out, not copied from its equations):
//
//   - Chunk-boundary reads (the default). phi is applied at the chunk's start (W0, where the gradients are
//     taken) and at its end: the last token of a complete chunk (position ChunkSize - 1 on the call's
//     grid) reads y = M_{phi(A_n)}(q) exactly. Tokens inside read weights that are linear in A_t, so the
//     read is Titans' rank-1 read (no per-token matrices):
//     lq (Moneta): h W~_t = s_t (h A_t), s_t = s(A0) (||A0||_F / ||A_t||_F)^{q-2}, s(A) = ||A||_q^{-(q-2)}:
//     the q-norm of A_t estimated from its Frobenius norm (exact per token from Gram products of the
//     rank-1 steps) with the chunk start's ratio ||A||_q / ||A||_F; exact when A_t is a multiple of A0
//     (the decay alone).
//     kl (Memora) and elastic_net: W~_t = phi(A0) + P (A_t - A0), the first-order expansion of phi about
//     A0 with its Jacobian replaced by a map P of the input side: kl P = c (diag(pi) - pi pi^T), pi the
//     mean of the columns' distributions phi(A0) / c (the softmax Jacobian exactly when all columns are
//     one distribution, TestMirasKLJacobian); elastic_net P = I (exact beyond the threshold).
//     Where this approximates: every token inside a chunk (positions 0 .. ChunkSize - 2, and all tokens of a
//     call's last partial chunk); the accumulators, the final state and the boundary tokens are exact.
//     Chunk size 1 makes every token a boundary: the exact recurrence (TestMirasChunkOneIsExact, 1e-12).
//     TestMirasBoundaryVsExact measures the outputs against the exact reads on a random input at the
//     model's sizes (Dh 32, 2-layer memory of expansion 2, chunks of 16, T 64, theta <= 0.05, float64):
//     with alpha near its init (<= 0.03) relative RMS 3.4e-3 for Moneta, 3.0e-4 for Memora (reading phi(A0)
//     alone, without the chunk's own writes: 0.31 and 4.1e-3); with strong forgetting (alpha in
//     [0.01, 0.2], where a chunk's accumulators change as much as their start) 0.67 for Moneta (its
//     Frobenius-ratio estimate of the q-norm fails there) and 8.0e-4 for Memora.
//   - Exact reads (Config.MirasExactReads, "titans.miras_exact_reads: true"): y_t = M_{phi(A_t)}(q_t) for
//     every token; chunkStepMapped's exactReads builds each token's A_t in the chunk as a matrix (one
//     batched product, n^2 in out multiply-adds per layer and chunk), about 20x Titans' cost.
//
// naive.go's token-by-token reference follows the chosen form (Retention.tokenWeights builds the same
// reads from full matrices: P applied to A_t - A0, the Frobenius norms from the entries), so chunk == naive holds
// in float64 for both forms (TestMirasChunkedEqualsNaive, TestMirasExactChunkedEqualsNaive).
// BenchmarkMiras measures the cost (B = 8, H = 4, Dh = 32, T = 1024, chunks of 16). With document starts
// (documents.go) the same reads are computed from per-token matrices (the exact form's cost), each token's
// A0 the accumulators at its segment's start and the boundary at position ChunkSize - 1 of its document's
// grid, so a packed row equals its documents run alone.
//
// The named models are mixer types that read the titans section (one set of memory settings for a
// user to learn; a model may mix titans_lmm and Miras layers) and set the objective and retention:
// moneta = lp + lq (p = 3, q = 4 by default, lp_p / lq_q), yaad = huber with learned delta_t + l2,
// memora = l2 + kl. A section whose attentional_bias or retention contradicts the type is an error.
// Departures from the paper's models, all kept from the Titans memory they extend: momentum (the paper's
// models use plain gradient steps; eta_t can learn to 0); the memory is the bias-free SiLU MLP of
// MemoryDepth layers (the paper: x + LayerNorm(W1 GELU(W2 x)), expansion 4), with q, k, v through the
// short conv, SiLU and L2 norm and the read-out's RMS norm and output gate; gates are one scalar per head
// and token (the paper: channel-wise through low-rank projections); the q-norm is taken over a layer's
// whole matrix per head.
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
// # Layout for the backends (products.go, project.go)
//
// The Go backend runs a batched matmul without copies only when the batch axes lead and the lhs
// contracts its last axis (the rhs its first non-batch axis or its last), and it transposes anything
// else element by element. The memory's products (mm, mmT, tmm) and the layers' projections (dense,
// projectAll) therefore carry custom gradients written in those layouts: a product over tokens swaps
// the narrower operand once (swapLast), and projections of one input share its transpose. The tp op
// has no per-chunk ops at all (ChunkedPyTorch: factors, chunk sums and reads batched over chunks, the
// weights of every chunk from one product with the gate matrix); the paper op computes its gate
// coefficients for all chunks at once and cuts q, k, v into chunks with layers.SplitAxis, whose gradient is
// one Concatenate. In float32 the tp memory's GELU is the backend's fused activation where it has one.
// BenchmarkLMM and BenchmarkLMMTP measure tokens/s (wall and CPU) and the T = 2048 / T = 256 time ratio.
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
// weights play the role of a memory that has (data-independently) read them. The attention is
// layers.Attention with PersistentTokens (MAG/MAL: its sliding window; MAC: ApplyWithContext, which puts
// h_t at x_t's in-segment position). The persistent keys carry no RoPE, so scores against them depend
// on the queries' absolute positions; with document starts those restart at each start
// (layers.Attention.ApplyDocuments), so a packed document sees them as it does alone.
//
// # State and streaming
//
// The carried state holds the memory weights minus their learned initial values, the momentum, the
// short-conv caches, and for MAG/MAL the attention's window cache (the W-1 tokens a window reaches back)
// and position. The zero state is the
// start of a sequence. Because chunks (and MAC segments) start at each call, streaming in pieces equals
// one call when the pieces are multiples of ChunkSize (SegmentSize for MAC). With CarryPartialChunk the
// state instead holds the weights, momentum and conv caches at the start of the stream's current partial
// chunk plus its tokens ("pending", "pending_count"); each call re-runs those tokens from there (ChunkSize-1
// extra tokens of compute), and one call equals any split into chained calls. MAC carries its partial
// segment the same way (the memory state at the segment's start plus the segment's tokens, SegmentSize-1
// extra tokens). TestCarryPartialChunk checks all four variants in both modes.
//
// Forgetting decays the weights towards zero, and a deep memory without biases has zero as a fixed
// point of its inner gradient (grad W_1 carries a factor W_2, grad W_2 a factor SiLU(k W_1)), so over a
// stream much longer than 1/alpha tokens the memory fades unless the learned alpha gates approach 0. At
// the initial alpha of about 0.018, TestFloat32Stability's 2,048 random tokens leave weights of order
// 1e-27 (weight norms that print as 0 in float32); on 64-token MQAR rows the decay is 0.98^64 = 0.3.
// Titans models meant for long streams should be trained on long rows, where alpha can learn.
//
// # Document starts (documents.go, tpdocuments.go)
//
// ApplyDocuments (layers.DocumentMixer) runs rows that pack documents, docStart [B, T] 1 at a document's
// first token. There the memory weights return to their learned initial value W_init ("memory/w{l}"; the
// accumulators' initial value for a Miras retention; titans_pytorch's theta_0, gamma included), the
// momentum to zero, the short convs restart (layers.ShortConvDocuments), and the document's chunk grid
// begins: its chunks are ChunkSize tokens from its own first token, as when it runs alone. Tokens before
// the row's first start continue the incoming state on the grid the call start anchors (Apply's). With
// pos_t the position of t on its document's grid and seg(t) = t - (pos_t mod ChunkSize) its chunk's start:
//
//	W_{s-1} := W_init, S_{s-1} := 0                                  at every start s
//	S_t = eta_t S_{t-1} - theta_t grad l(M_{W_{seg(t)-1}}; x_t),  W_t = (1 - alpha_t) W_{t-1} + S_t
//
// NaiveDocuments is this token by token. ChunkedDocuments keeps the fixed grid of chunks from the call
// start and is exact for starts anywhere, mid-chunk included: a grid chunk holds at most one chunk
// boundary c of a document that is not a start (its document then covers the grid chunk's first token,
// and only one does), so each token takes its gradient at one of three weights: W_init (its document
// started inside the grid chunk), the anchor (the weights at the start of the first document's current
// chunk), or W_{c-1}, which is read off the chunk's earlier rank-1 updates before those tokens' gradients
// are taken. Inside a grid chunk the Parallel form's coefficient matrices are masked to same-document
// pairs, B_t W0 + c_t S0 is kept only before the chunk's first start, and W_init enters at each start s
// with factor prod_{j=s..t} (1 - alpha_j). Chunk size 1 is the per-token recurrence. The price is two more
// gradient passes per chunk and n x n masks (BenchmarkLMMDocuments).
//
// titans_pytorch mode: a document's complete chunks write at their last token e, with eta, alpha from
// the mean of x^s over the chunk's own C tokens and the sum of their gradients, taken at W_init
// (ttt_batch_size 0) or at the weights of the start of their TTT batch (Q tokens from the document's
// first token; a chunk lies in one batch, so a write's tokens share that point); token t reads the
// weights after every write of its document at or before t (the one-token shift on the document's
// grid). Two writes within C tokens would be overlapping chunks, so a grid chunk has at most one:
// ChunkedPyTorchDocuments walks the grid, each token reading one of three weights, and with TTT batches
// takes the write's gradients in one pass over its C tokens at their batch's start.
// NaivePyTorchDocuments is the token-by-token reference.
//
// MAG and MAL restart the memory as above and attend through layers.Attention.ApplyDocuments (keys of
// the query's document only, RoPE positions restarting at each start). That is exact with persistent
// tokens too (TestMAGMALPersistentTokensNoLeak): the persistent keys carry no position, and a document's
// queries are rotated at their in-document positions, as when it runs alone. Their returned window
// caches are the row's, as layers.Attention's.
//
// MAC (macdocuments.go) restarts the same way; a document's segments ("pieces") are SegmentSize (S) tokens
// from its own first token. A piece reads h = M(q) at the weights the document's previous piece left
// (W_init for its first piece), attends over [persistent ; h ; piece] with RoPE positions from the
// piece's first token, and the memory is updated with y. Pieces therefore run in document order, and
// their ends are not on a grid of the row. The schedule is exact with static shapes: round j takes the
// pieces that start in the grid cell [jS, (j+1)S), a contiguous run of fewer than 2S tokens gathered
// per row into a buffer of min(2S-1, T). At most its first piece continues a document (it reads the
// carried weights; every other piece reads W_init) and at most its last is continued (then it is a whole
// piece, and the LMM runs over its S outputs to give the carried state, from a reset where it begins a
// document). Attention is layers.Attention.ApplyWithContextDocuments with the pieces as its documents.
// The y of all rounds, back in row order, go through one LMM ApplyDocuments over the row from the
// incoming state (a document's per-segment LMM calls chain into one call on it since S is a multiple of
// ChunkSize), whose outputs gate y and whose state is returned. Tokens before the row's first start
// continue the incoming state on the call's segment grid, as Apply. Re-laying each document onto
// segment boundaries (padding before each start) was not taken: its static length is T + (S-1) per
// possible start, up to T * S for one-token documents. TestMACPackedEqualsSeparate holds packed rows
// equal to their documents run alone in float64, gradients included (starts mid-segment, on the grid,
// at t = 0; documents shorter than a segment; tokens continuing the incoming state; both modes).
//
// The price against Apply: attention over buffers of up to 2S-1 queries and 4S-2 keys (about four times
// the scores), two memory reads per buffered token, the LMM's plain op over the carried pieces ((rounds-1)
// * S tokens) and its document op over the row (ChunkedDocuments, itself about 3x Chunked), and the
// gathers. BenchmarkMAC (float32, Go backend, B = 8, T = 512, S = 128, documents of 100 tokens, on a
// loaded 2-core machine) measured about 7.4k tokens per CPU second forward against Apply's 25k-37k,
// and 2.6k-2.8k forward + backward against 7.2k-9.0k: 3-4x. Apply itself is untouched (its graph has
// the same operations as before MAC took documents).
//
// carry_partial_chunk is refused at graph build for every variant, naming the field: the carried partial
// chunk (segment) would differ in length from row to row after document starts, and "pending_count" is
// one scalar for the batch. So are titans_pytorch TTT batches that do not divide segment_size with MAC
// (MAC cuts TTT batches at each segment; one LMM call over a document would not).
//
// # Introspection
//
// Every mixer implements Introspector: ApplyWithStats returns Stats (mean surprise = inner loss at the
// chunk-start weights, mean theta/eta/alpha, fraction of clamped tokens, per-layer weight norm);
// Stats.Metrics names them for a trainer's log.
//
// # The tp compatibility mode (tp.go, tplmm.go, import.go)
//
// Config.Mode = "titans_pytorch" (first named "tp", still accepted) is lucidrains/titans-pytorch's NeuralMemory (titans_pytorch/neural_memory.py at
// commit cc016eb) with its default options: batch_size None, momentum order 1, per-head learned
// parameters, pre_rmsnorm, mean pooling of chunks, no q/k/v activation, max lr 1 (set MaxLR = 1), no
// gradient clipping (GradClamp = 0), the ResidualNorm(MemoryMLP) memory. Order of operations, per batch
// row and head, with x^s = RMSNorm_store(x) and x^r = RMSNorm_retrieve(x) (weights "store_norm",
// "retrieve_norm"; eps = the dtype's machine epsilon, torch.finfo(dtype).eps):
//
//  1. k_t = (x^s_t W_k)[h], v_t = (x^s_t W_v)[h], q_t = (x^r_t W_q)[h]: no short conv, no activation, no
//     L2 norm (ConvKernel is ignored and the state has no conv caches).
//  2. theta_t = MaxLR * sigmoid(x^s_t w_theta + b_theta), one per token.
//  3. Per complete chunk i of C tokens (cut from the call start, or with CarryPartialChunk from the
//     stream's start; a last partial chunk is read but not written): p_i = mean of x^s over the chunk, eta_i = sigmoid(p_i w_eta + b_eta), alpha_i =
//     sigmoid(p_i w_alpha + b_alpha).
//  4. Memory M(z) = z + LayerNorm(MLP(z)) * (1 + gamma), the LayerNorm without affine and eps 1e-5,
//     MLP(z) = z W_1 (L_M = 1) or GELU(z W_1) W_2 ... with exact (erf) GELU; gamma [Dh] per head is a
//     fast weight like the W_l (state "w_gamma" / "s_gamma", initial value "memory/gamma").
//  5. G_i = grad sum_{t in chunk i} theta_t mean_d (M(k_t) - v_t)_d^2, taken at the learned initial
//     weights "memory/*" for every chunk and in every call (TTTBatchSize = 0, titans-pytorch's batch_size
//     None), or, with TTTBatchSize = Q > 0, at the weights of the start of t's TTT batch of Q tokens.
//  6. S_i = eta_i S_{i-1} - G_i;  W_i = (1 - alpha_i) W_{i-1} + S_i (W_0, S_0: the carried state).
//  7. Reads with a one-token shift: token t reads W_{floor((t+1)/C)}. Tokens 0..C-2 of a call read the
//     carried W_0; the last token of chunk i already reads W_{i+1}, the weights after its own chunk's
//     write, and the other tokens of chunk i+1 read the same W_{i+1}. (An earlier version of this doc said
//     every token read the weights before its chunk's write; the golden vectors show the shift.)
//  8. r_t = M_{W_{floor((t+1)/C)}}(q_t) * sigmoid(x^r_t w_g)[h] (OutputGate: one gate per head,
//     "retrieve_gate"); y_t = concat_h(r_t) W_o ("output", titans-pytorch's combine_heads).
//
// ImportPyTorchState loads a NeuralMemory state_dict into these variables. TestGoldenTitansPyTorch and
// TestGoldenTitansPyTorchStream hold the layer to titans-pytorch's own outputs, final weights and
// momentum, and gradients of x and every parameter (testdata/titans_pytorch; memory depth 1 and 2, and
// 12 + 12 tokens in two calls), to about 1e-15 in float64 and 1e-6 in float32.
//
// Differences that remain between mode tp and titans-pytorch:
//
//   - Partial chunks. titans-pytorch keeps a call's incomplete last chunk in its state and writes it in
//     the next call. Here that takes CarryPartialChunk (state "pending" [B, C-1, D] and "pending_count";
//     off by default, as it costs C-1 extra tokens of compute per call): then one call equals any split
//     into chained calls (TestCarryPartialChunk; TestGoldenTitansPyTorchCarry splits the golden stream
//     1 + 6 + 17). Without it the partial chunk is read but never written, so chained calls equal one
//     call only when every call but the last is a multiple of ChunkSize (SegmentSize for MAC).
//   - TTT batches (TTTBatchSize > 0) are cut from each call's start; titans-pytorch counts batch_size
//     across calls with its seq_index. It also steps its single-token calls through a separate path,
//     not compared here.
//   - Parameterisation and init. The gate logits carry fixed offsets (+0 theta, +2 eta, -4 alpha) on
//     zero-initialised biases and weights N(0, 1/D); titans-pytorch uses nn.Linear's init and no offset
//     (ImportPyTorchState subtracts the offsets from the biases, so imported layers compute the same).
//     The memory weights start N(0, 1/in), gamma at 0. Linear weights are stored [in, out].
//   - One head: titans-pytorch has no retrieve gate and no combine_heads then; here OutputGate and the
//     output projection stay (the importer sets the projection to the identity when absent).
//   - The state carries the memory weights minus their learned initial value (zero = start of sequence),
//     and the momentum; titans-pytorch carries the weights themselves.
//   - Float dtypes: in float64 erf comes from an in-graph series (the Go backend's Erf is a 1.5e-7 fit on
//     SIMD builds); float32 uses the backend's Erf. NormEps is unused in this mode.
//   - GradClamp > 0 (off in the reproduction) clamps each token's joint inner-gradient norm as in the paper
//     mode; titans-pytorch's max_grad_norm clips differently. Options not reproduced: momentum_order > 1,
//     learned_momentum_combine, per_parameter_lr_modulation, attn_pool_chunks, qk_rmsnorm, post_rmsnorm,
//     activation, num_kv_per_token > 1, qkv_receives_diff_views, spectral_norm_surprises, gated_transition,
//     accept_weight_residual, per_head_learned_parameters False, init_*_bias, other memory models.
//   - MAC, MAG and MAL in mode tp are Engram's architectures (section 4 of the paper) around the tp
//     memory, not titans-pytorch's MemoryAsContextTransformer; MAC's retrieval keeps its own L2-normalised
//     query projection.
//
// Shape legend: B batch, T time, D model width, H heads, Dh head width, n chunk length, E expansion.
package titans
