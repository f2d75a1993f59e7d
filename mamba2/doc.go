// Package mamba2 is the Mamba2 layer as a Mixer: a selective state-space model whose state transition is
// a scalar per head and step, which makes it gated linear attention (the "state space duality").
//
// Paper: T. Dao, A. Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
// Structured State Space Duality", ICML 2024: the SSM with scalar-times-identity A (sec. 3), its
// chunked (block-decomposition) algorithm (sec. 6, Listing 1's ssd_minimal_discrete), the Mamba-2 block
// (sec. 7: parallel projections, conv over x, B, C, grouped B/C "multi-value" heads, extra norm).
// Behaviour checked against flash-linear-attention's Mamba2 layer (fla/layers/mamba2.py, torch_forward
// and its decode path; state-spaces/mamba's Mamba2 has the same state_dict and norm) through the golden
// vectors in testdata/mamba2_layer (copied from the shared golden set; README.md there).
//
// # Recurrence (naive.go; per batch row, head h, group g = h / (H/G))
//
//	S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T      (S: [P, N])
//	y_t = S_t C_t + D_h x_t                           (the output reads the state after the write)
//
// with A_h = -exp(A_log_h) < 0 and dt_t = softplus(dt~_t + dt_bias) > 0, so every per-step decay
// exp(dt A) is in (0, 1). Naive unrolls it token by token; Step is one token, the decode step. Both
// leave out the D skip, which the layer adds.
//
// # Chunked form (chunk.go)
//
// The SSM is deltanet's gated linear attention with q = C, k = B, v = dt x, log-decay g = dt A and
// scale 1: S^T <- exp(g) S^T + k v^T, y = (S^T)^T q. Chunked therefore reuses deltanet.Chunked with
// Options{Gate: true, Delta: false} (the delta-rule write is off, so deltanet ignores beta and returns
// a zero gradient for it; a zero beta is passed). That is the SSD algorithm of sec. 6: within chunks of
// C tokens the outputs are (C K^T .* L) V with L_ri = exp(G_r - G_i) the decays between positions
// (deltanet/decay.go), plus the incoming state's contribution; only the state crosses chunks. B and C
// are expanded from G groups to H heads before the call (head h reads group h / (H/G), as mamba_ssm's
// kernels and fla's decode path do); the state is transposed from [P, N] to deltanet's [K, V] = [N, P]
// at entry and back at exit.
//
// # The layer (layer.go; Mamba-2 block, sec. 7)
//
//	[z, xBC, dt~] = W_in u                        (in_proj, no bias; this split order, widths d, d + 2GN, H)
//	xBC = SiLU(conv1d(xBC) + bias)                causal depthwise conv of kernel conv_size, with bias
//	[x, B, C] = xBC                               (widths d = H P, G N, G N; heads and groups consecutive)
//	dt = softplus(dt~ + dt_bias);  A = -exp(A_log)
//	y = SSM(x, dt, A, B, C) + D x                 (Naive or Chunked)
//	out = W_out (RMSNorm_G(y * SiLU(z)) * w)      gate first, then RMSNorm per group of d/G channels
//
// The carried state is {ssm [B, H, P, N], conv [B, conv_size-1, conv_dim]} (StateSpecs); a call with
// T = 1 takes the recurrent step, so decoding token by token equals the chunked form.
//
// Init (as mamba_ssm's Mamba2 and fla's layer): A ~ U(1, 16), A_log = log A; dt = exp(U(log 1e-3,
// log 1e-1)) floored at 1e-4, dt_bias = softplus^-1(dt) (deltanet.DTBiasInit); D = 1; norm weight 1;
// projections U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default, layers.Dense); conv weight and bias
// U(-1/sqrt(K), 1/sqrt(K)) (nn.Conv1d's default). A_log, dt_bias and D are exempt from weight decay
// (NoWeightDecay; mamba_ssm marks them _no_weight_decay).
//
// # Where this departs from the paper or the reference code
//
//   - Sizes: Config gives heads and head_dim (d = H P) instead of fla's expand * hidden_size; fla's
//     num_heads = d / head_dim is the same thing. DefaultConfig is a small research layer (4 heads of
//     32, state 32, chunks of 64); Mamba2's defaults are head_dim 64, state 128, chunks of 256.
//   - Layouts (FromFLA / ReadFLA map them): Dense weights are [in, out] (fla's Linear [out, in]); the
//     conv weight is [K, conv_dim] (fla's Conv1d [conv_dim, 1, K]); the conv cache keeps the K-1 newest
//     conv inputs [B, K-1, conv_dim], where fla keeps K ([B, conv_dim, K]); its oldest column is never
//     read again (FLAState drops it). The SSM state has fla's layout [B, H, P, N].
//   - Groups: fla's prefill path (torch_forward) repeats B and C so that head h reads group h % G, while
//     its decode path, its CUDA kernels and mamba_ssm use h / (H/G); this package uses h / (H/G)
//     everywhere (the golden case d_t37_g2 holds it to fla's decode path). With G = 1 they agree.
//   - softplus is log(1 + exp(x)) everywhere; torch's returns x itself above 20 (a difference below
//     2e-9 absolute there). dt_limit is (0, inf) (fla's default; other limits are not implemented).
//   - Not expressible: D_has_hdim, use_bias (projection biases), rmsnorm False, norm_before_gate True,
//     conv without bias, fla's attention_mask (padding). The import rejects such weights.
//   - Document starts inside packed rows (layers.DocumentMixer) are in documents.go: ApplyDocuments
//     restarts the conv and the SSM state at each start (NaiveDocuments, ChunkedDocuments).
//   - Speed: the layer uses layers.Dense and layers.ShortConvWithWeight (slices per tap), not deltanet's
//     Go-backend-tuned projections and gathers.
//
// Shape legend: B batch, T time, H heads, P head_dim, N state_size, G n_groups, d = H P inner width,
// conv_dim = d + 2 G N, K conv_size, C chunk length, D = d_model.
package mamba2
