// Package deltanet is the gated delta rule family as one Mixer: linear attention, DeltaNet, gated
// linear attention (Mamba2-style scalar decay) and Gated DeltaNet, chosen by two switches.
//
// Paper: S. Yang, J. Kautz, A. Hatamizadeh, "Gated Delta Networks: Improving Mamba2 with Delta Rule",
// ICLR 2025. Behaviour checked against flash-linear-attention (fla/ops/gated_delta_rule/naive.py,
// fla/layers/gated_deltanet.py) through the golden vectors in testdata/gated_delta_rule (copied from the shared golden set).
//
// # Recurrence (per batch and head; the paper's eq. 10)
//
//	S_t = (I - beta_t k_t k_t^T) alpha_t S_{t-1} + beta_t k_t v_t^T   (S: [K, V]), computed as
//	S <- alpha_t S;  u_t = beta_t (v_t - S^T k_t);  S <- S + k_t u_t^T;  o_t = S^T q_t / sqrt(d_k)
//
// with alpha_t = exp(g_t). Switches: Gate false sets alpha_t = 1 (DeltaNet); Delta false writes
// S <- alpha_t S + k_t v_t^T (gated linear attention); both false is linear attention.
//
// # Two implementations, one argument list
//
// Naive (naive.go) unrolls the recurrence token by token; Step is its single token, the decode step.
// Chunked (chunk.go) is the chunkwise-parallel WY form for training: within chunks of C tokens
// everything is matrix products, and only the state crosses chunks (ceil(T/C) unrolled steps). It
// needs (I + A)^-1 for strictly lower-triangular A; InvertUnitLower (invert.go) computes it by forward
// substitution on 16x16 diagonal blocks and block doubling, which stays accurate in float32 where the
// power product (I - A)(I + A^2)(I + A^4)... does not (invert_test.go measures both). The decay
// factors are exp(G_r - G_i) of within-chunk cumulative log-decays, with the arguments above the
// diagonal zeroed before the exp (decay.go): for decays (g <= 0) they are exps of non-positive numbers,
// so strong decay underflows to 0 rather than overflowing.
//
// Layout: ChunkedHeadMajor works on [B, H, T, ...] tensors seen as [B, H, N, C, ...], so every product is
// a batched matmul over leading [B, H, N] axes in the layout the Go backend's kernels read without
// copies; Chunked is the same op on [B, T, H, ...] tensors (one transpose in, one out). The unrolled
// recurrence takes its per-chunk operands through layers.SplitAxis, whose gradient is one concatenation
// (autodiff of per-chunk slices would pad every chunk's gradient to full size: quadratic in T).
// Gradients are written out where autodiff would transpose (customgrad.go): every product x y gets
// dx = v y^T and dy = x^T v with x^T computed once per tensor (or as a product), and InvertUnitLower
// gets dA = -T^T dT T^T. These custom gradients are first-order: differentiating a gradient of
// Chunked again (second order) is not supported.
//
// Naive and Chunked: q, k [B, T, H, K], v [B, T, H, V], beta, g [B, T, H], h0 [B, H, K, V] (nil = zeros)
// -> o [B, T, H, V], ht [B, H, K, V]; ChunkedHeadMajor: the same with T and H swapped.
//
// # Document starts (packed rows; NaiveDocuments, ChunkedDocuments)
//
// With docStart [B, T] (1 at a document's first token) the state restarts from zero at each start:
// Naive multiplies S by 1 - docStart_t before token t's step. The chunked form does not add a huge
// negative log-decay at the start (cumulative sums of such values ruin the float32 decays after them);
// it masks instead, with s_r = the number of starts in the chunk up to r: Gamma, the scores Q K^T and
// the WY system keep only pairs with s_r = s_i (block diagonal by document, so T = (I + A)^-1 is too),
// tokens with s_r > 0 take no part of the incoming state (exp(G_r) -> 0 in O and in W), and the
// outgoing state keeps exp(G_C) S only when the chunk has no start and the writes of tokens with
// s_r = s_C only (decay.go, withDocuments). Products over (i, r] inside one document are unchanged, so
// no exp argument changes. The layer's short convolutions read zeros before a start (layers.ConvTapKeep)
// and carry only the last document's inputs. documents_test.go holds chunk == naive with starts
// (outputs, final state, all six gradients; every member; C = 1, 16, 64) and packed == separate.
//
// # The layer (layer.go)
//
//	q, k, v = SiLU(ShortConv_4(W_q x)), SiLU(ShortConv_4(W_k x)), SiLU(ShortConv_4(W_v x))
//	q, k <- q / sqrt(|q|^2 + 1e-6), k / sqrt(|k|^2 + 1e-6)        per head
//	beta = sigmoid(W_b x)            (x2 with allow_neg_eigval: beta in (0, 2))
//	g = -exp(A_log) softplus(W_a x + dt_bias)
//	y = W_o (RMSNorm(o) * SiLU(W_g x))                               RMSNorm per head, eps 1e-5
//
// Init: A ~ U(0, 16), A_log = log A; dt = exp(U(log 1e-3, log 1e-1)) >= 1e-4, dt_bias =
// softplus^-1(dt); the variables are named "A_log" and "dt_bias" so optimizers can exclude them from
// weight decay. The carried state is {S, conv_q, conv_k, conv_v} (StateSpecs); a call with T = 1 takes
// the recurrent step, so streaming one token at a time equals the chunk form.
//
// The layer builds its projections and short convolutions itself (dense, shortConv: the same variables,
// initialisation and values as layers.Dense and layers.ShortConv, tested against them) so that on the
// Go backend the projections of one input share one transpose for their weight gradients and the
// convolution's shifted views are row gathers rather than element-wise slices.
//
// Choices where the paper is silent, following flash-linear-attention: one RMSNorm weight [d_v] shared
// by the heads; projections without bias; the chunk length is min(chunk_size, T) so short inputs are not
// padded to a whole chunk; A is floored at 1e-4 before its log so a draw of 0 cannot give -Inf.
//
// # flash-linear-attention's GatedDeltaNet
//
// With preset gated_deltanet and fla's sizes (heads = num_heads, head_dim_k = head_dim, expand_v,
// conv_size, use_short_conv, allow_neg_eigval, norm_eps) the layer computes exactly fla's
// fla/layers/gated_deltanet.py with use_gate = True, conv_bias = False, num_v_heads = num_heads:
// golden_layer_test.go holds it to fla's float64 outputs, final state, conv caches and all 13 parameter
// gradients to below 1e-14 relative L2 (testdata/gated_deltanet_layer). checkpoints.ReadFLAGatedDeltaNet loads fla's
// state_dict (cmd/export -import-fla) and checkpoints.FLAGatedDeltaNetState its cache. What differs:
//
//   - Layouts (the import maps them): Dense weights are [in, out] (fla's Linear [out, in]); conv weights
//     [W, channels] (fla's Conv1d [channels, 1, W]); the conv caches conv_q/k/v [B, W-1, channels] hold
//     the W-1 newest projected inputs (fla keeps [B, channels, W]; its oldest column is never read
//     again, so nothing is lost); S is [B, H, d_k, d_v] (fla's layer cache keeps [B, H, d_v, d_k], its
//     kernels' state_v_first; its naive reference uses [B, H, d_k, d_v]).
//   - norm_eps: 1e-5 by default, fla's layer default; fla's model config (GatedDeltaNetConfig) passes
//     1e-6, so set norm_eps: 1e-6 to reproduce a layer of an fla model. It is not visible in the weights.
//   - Sizes: DefaultConfig is a small research layer (4 heads, d_k 32, chunks of 64); fla's defaults are
//     6 heads of 256 for hidden 2048. The chunk size and mode change only summation order.
//   - Init: projections U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default; see layers.Dense); fla's models
//     redraw them N(0, 0.02^2). A_log and dt_bias are drawn as in fla's layer; conv weights use
//     nn.Conv1d's default; the o_norm weight starts at ones.
//   - Not expressible: use_gate = False (fla then uses a plain RMSNorm without the output gate),
//     conv_bias = True, and fla's attention_mask (padding); the import rejects such weights (a missing
//     or extra tensor, or a shape error).
//
// # Grouped value heads (v_heads; fla's num_v_heads, "GVA")
//
// With v_heads = HV a multiple of heads = H, v, beta, the decay g (a_proj, A_log, dt_bias), the state S,
// the output gate and the output norm are per value head (HV of them), and the H q/k heads are shared:
// value head j reads q/k head j / (HV/H), so consecutive value heads form a group (fla's kernels index
// i_h = i_hv // (HV // H): repeat_interleave, not repeat). The layer repeats q and k to HV heads
// (groupHeads) before the ops, which are unchanged; v_heads = 0 or = heads builds exactly the graph of
// the layer without it. Only the float64 harness checks it (gva_test.go): there are no fla golden vectors
// with num_v_heads > num_heads, the fla import does not map them, and MoM's memories reject v_heads.
//
// Shape legend: B batch, T time, H heads, K = d_k key width, V = d_v value width (d_k * expand_v),
// C chunk length, N = ceil(T / C) chunks, D = d_model.
package deltanet
