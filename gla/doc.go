// Package gla is gated linear attention with per-channel (vector) gates, as one Mixer: layer type "gla",
// config section "gla".
//
// Paper: S. Yang, B. Wang, Y. Shen, R. Panda, Y. Kim, "Gated Linear Attention Transformers with
// Hardware-Efficient Training", ICML 2024. Behaviour follows flash-linear-attention's
// fla/layers/gla.py (GatedLinearAttention) and fla/ops/gla; the ops are checked against fla's
// plain-PyTorch naive_recurrent_gla through the golden vectors in testdata/gla_op (copied from the shared
// golden set, README there).
//
// # Recurrence (per batch and head; the paper's eq. 3 with the gate of sec. 4.1)
//
//	S_t = diag(alpha_t) S_{t-1} + k_t v_t^T   (S: [K, V]);  o_t = S_t^T (scale q_t),  scale = K^-1/2
//
// with alpha_t = exp(gk_t) in (0, 1]^K: each key channel (row of S) decays at its own rate. The deltanet
// package's mamba2_style member is the special case of one scalar decay per head.
//
// # Two implementations, one argument list
//
// Naive (naive.go) unrolls the recurrence token by token; Step is its single token, the decode step.
// Chunked (chunk.go) is the chunkwise-parallel form (the paper's sec. 4.2-4.3) for training: with
// G_r = gk_1 + ... + gk_r cumulative within a chunk of C tokens (per channel, non-increasing),
//
//	O = (scale Q .* exp(G)) S + P V,   P_ri = scale sum_c q_r[c] k_i[c] exp(G_r[c] - G_i[c])  (i <= r)
//	S <- diag(exp(G_C)) S + (K .* exp(G_C - G))^T V
//
// and only S crosses chunks (ceil(T/C) unrolled steps; GoMLX has no differentiable loop).
//
// Float32 safety. The paper's factorisation P = (Q .* exp(G)) (K .* exp(-G))^T needs exp(-G), which
// overflows in float32 once a chunk's log-decay passes -88 (per-step decays of 0.0096, golden case
// b_t75_mixed, get there in 19 tokens). Like fla's kernels we never form exp(-G): chunks are cut into
// sub-chunks of c = SubChunk = 16 tokens, and
//   - for r and i in different sub-chunks, exp(G_r - G_i) = exp(G_r - G_n) exp(G_n - G_e) exp(G_e - G_i)
//     with G_n the cumulative gate at the first token of r's sub-chunk and G_e at the last token of i's:
//     i <= e < n <= r, so every exponent is <= 0, and the scores of a pair of sub-chunks are one product
//     (queries decayed to their sub-chunk's start, keys to their sub-chunk's end, the decay between per
//     channel);
//   - for r and i in the same sub-chunk the differences G_r - G_i are formed per channel for the
//     c (c + 1) / 2 pairs i <= r only (gathered as [pairs, ..., K]; the pairs above the diagonal are
//     never computed and read as zeros).
//
// Every exp in the op therefore has a non-positive argument: strong decay underflows to 0 (the right
// value) and nothing overflows, whatever the gates, and nothing is masked: the pairs above the diagonal
// are never computed. The float32 golden errors stay at 1e-7 on all cases (golden_test.go). The price is
// the [pairs, K] tensor per sub-chunk (T (c + 1) K / 2 per head, like fla's intra sub-chunk kernel,
// which loops where we materialise). Gradients are GoMLX's autodiff of these graphs. The tensors are laid
// out positions first ([c, S, M, K]) so that every broadcast is over leading axes, which the Go backend
// vectorises (over a middle axis it loops element by element).
// BenchmarkGLA measures the layer at B = 8, H = 4, T = 1024, d_k = d_v = 64.
//
// Naive and Chunked: q, k, gk [B, T, H, K], v [B, T, H, V], h0 [B, H, K, V] (nil = zeros) ->
// o [B, T, H, V], ht [B, H, K, V]. The chunk length is 1..16 or a multiple of 16.
//
// # The layer (layer.go), as fla's GatedLinearAttention
//
//	q, k, v = W_q x, W_k x, W_v x                                  (no feature map, no short conv)
//	gk = logsigmoid(W_gk2 (W_gk1 x) + b_gk) / 16                    (low rank 16: alpha = sigmoid(.)^(1/16))
//	y = W_o (RMSNorm(o) * SiLU(W_g x))                              RMSNorm per head, eps 1e-5
//
// Sizes as in fla: H d_k = d_model * expand_k (default 0.5), H d_v = d_model * expand_v (default 1),
// 4 heads. Variables: q_proj, k_proj, v_proj, g_proj, o_proj (weight [in, out], no bias), gk_proj/0
// (weight), gk_proj/1 (weight, bias), g_norm (weight [d_v], shared by the heads) -- fla's state_dict names
// with our [in, out] layout. The carried state is {S} [B, H, d_k, d_v]; a call with T = 1 takes the
// recurrent step, so decoding one token per call equals the chunked call (layer_test.go).
//
// fla options implemented: heads (num_heads), expand_k, expand_v, gate_low_rank_dim, gate_logit_normalizer,
// clamp_min (0 here means none; fla's None), use_output_gate (false: W_o RMSNorm(o), as fla), norm_eps,
// the swish output gate (gate_fn = swish, fla's default; fused or not computes the same). Not implemented:
// feature_map (fla's default None is what we compute), use_short_conv (fla's default False),
// num_kv_heads < num_heads (MQA/GQA), elementwise_affine = False, other gate_fn, attention_mask.
// Where we differ from fla: projections start U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default, see
// layers.Dense; fla's models redraw N(0, 0.02^2)); the chunk length is min(chunk_size, T rounded up to
// whole sub-chunks), which changes only summation order; fla uses its fused recurrent kernel for inputs
// of at most 64 tokens, we use the chunked form unless T = 1.
//
// Shape legend: B batch, T time, H heads, K = d_k, V = d_v, C chunk length, c sub-chunk length (16),
// D = d_model.
package gla
