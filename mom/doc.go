// Package mom is Mixture-of-Memories: M gated-delta-rule memories behind a top-k router, plus an
// optional shared memory that sees every token, as one Mixer.
//
// Paper: J. Du, W. Sun, D. Lan, J. Hu, Y. Cheng, "MoM: Linear Sequence Modeling with Mixture-of-Memories",
// 2025 (arXiv:2502.13685). Each memory is the recurrence of package deltanet (Yang, Kautz & Hatamizadeh,
// "Gated Delta Networks", ICLR 2025); the load-balancing loss is Switch Transformer's (Fedus, Zoph &
// Shazeer, JMLR 2022, eq. 4).
//
// # The layer (layer.go, router.go)
//
//	p_t = softmax(W_r x_t) in float32 or wider;  C_t = top-k of p_t;  w_tm = p_tm / sum_{j in C_t} p_tj
//	q_t = shared query (projection, short conv, SiLU, L2 norm per head)
//	memory m: k^m, v^m (own projections, shared short-conv kernels), beta^m = sigmoid(W_b^m x),
//	          g^m = -exp(A_log) softplus(W_a^m x + dt_bias)   (A_log, dt_bias shared)
//	          S^m advances by the gated delta rule at the tokens with m in C_t only
//	o_t = sum_{m in C_t} w_tm (S^m_t)^T q_t / sqrt(d_k)  [+ the shared memory's output, weight 1]
//	y_t = W_o (RMSNorm(o_t) * SiLU(W_g x_t))
//
// # Routing with fixed shapes (mix.go)
//
// "A token not routed to m neither decays nor updates m, and m gives no output there" is done by
// masking, not by sorting tokens into variable-length groups: at an unrouted token memory m takes
// g = 0 (alpha = 1), beta = 0 and k = 0, a step that leaves S^m exactly as it was, and its output is
// multiplied by 0. All E = M (+1 shared) memories then run as E*H heads of one deltanet.Chunked call.
// mix_test.go holds this equal, in float64 with gradients, to gathering each memory's tokens, running
// deltanet.Naive on that subsequence and scattering the outputs back. The price of fixed shapes is
// compute: every memory processes every token, so the recurrence costs E times a single gated
// DeltaNet of the same head size (bench_test.go measures the whole layer against one).
//
// # Load balancing and logging
//
// BalanceLoss gives loss = M sum_m f_m P_m with f_m the fraction of the call's k*N assignments that
// went to m and P_m the mean router probability (1 when uniform, M when collapsed). In training graphs
// (GoMLX's Store.IsTraining) the layer adds aux_loss_weight * loss with GoMLX's
// train.AddRegularizationLoss (what the deprecated train.AddLoss maps to), so the trainer's loss metric
// includes it, and writes f into the non-trainable variable LoadVariable ("router_load", [M] float64)
// under its scope, for a trainer to read after each step. ApplyWithStats (the Introspector interface,
// like titans.Introspector) returns the same statistics as graph nodes with Stats.Metrics naming them
// "load_m", "router_prob_m" and "balance_loss".
//
// # Choices where the paper is silent or that fixed shapes force
//
//   - The short convolutions run over the full token stream, before routing: a memory's key at token t
//     mixes the memory's projections of tokens t-3..t whether or not those were routed to it. One conv
//     kernel per feature (q, k, v) is shared by all memories; the caches hold every memory's projected
//     inputs (conv_k, conv_v are E times wider than a gated_deltanet layer's).
//   - With k = 1 the renormalised weight is exactly 1, so the router learns only from the balance loss;
//     use k >= 2 (the default) for a router trained by the main loss too.
//   - With M = 1 there is nothing to route: no router variable is made and, without the shared memory,
//     the layer is exactly a gated_deltanet layer with the same variable names and state
//     (layer_test.go checks outputs, states and every gradient).
//   - The balance loss averages over every token of the call (padding included: the mixer sees no loss
//     mask), and a graph that applies the layer several times (streamed segments) adds one term per call.
//   - Ties in the router's top-k go to the lower memory index (GoMLX's TopKMask sorts stably).
//
// The carried state is "S" [B, E*H, d_k, d_v] (head e*H + h is head h of memory e; the shared memory is
// e = M) and the conv caches. A call with T = 1 takes the per-token step, so decoding one token at a time
// equals the chunk form.
//
// Shape legend: B batch, T time, M routed memories, E = M (+1 with the shared memory), H heads per
// memory, K = d_k, V = d_v, D = d_model.
package mom
