// Package mom is Mixture-of-Memories: M gated-delta-rule memories behind a top-k router, plus an
// optional shared memory that sees every token, as one Mixer.
//
// Paper: J. Du, W. Sun, D. Lan, J. Hu, Y. Cheng, "MoM: Linear Sequence Modeling with Mixture-of-Memories",
// 2025 (arXiv:2502.13685). Each memory is the recurrence of package deltanet (Yang, Kautz & Hatamizadeh,
// "Gated Delta Networks", ICLR 2025); the load-balancing loss is Switch Transformer's (Fedus, Zoph &
// Shazeer, JMLR 2022, eq. 4) as flash-linear-attention computes it for MoM.
//
// # The layer (layer.go, router.go)
//
//	p_t = softmax(W_r x_t) in float32 or wider;  C_t = top-k of p_t;  w_tm = p_tm / sum_{j in C_t} p_tj
//	q_t = shared query (projection, short conv, SiLU, L2 norm per head)
//	memory m: k^m, v^m (own projections, shared short-conv kernels), beta^m = sigmoid(W_b^m x),
//	          g^m = -exp(A_log) softplus(W_a^m x + dt_bias)   (A_log, dt_bias shared)
//	          S^m advances by the gated delta rule at the tokens with m in C_t only (that fit its buffer)
//	o_t = sum_{m in C_t} w_tm (S^m_t)^T q_t / sqrt(d_k)  [+ the shared memory's output, weight 1]
//	y_t = W_o (RMSNorm(o_t) * SiLU(W_g x_t))
//
// # Routing with fixed shapes (mix.go)
//
// "A token not routed to m neither decays nor updates m, and m gives no output there" has two forms.
//
// Capacity buffers (MixCapacity; the default, capacity_factor > 0). Each routed memory gets a buffer of
//
//	capacity = ceil(capacity_factor * k * T / M)   tokens per call of T tokens and per batch row,
//
// at most T, and rounded up to fill the fewest evenly sized chunks it runs in (Capacity, BufferChunk:
// at T = 256 with chunks of 64, 160 -> 168 = 3 chunks of 56; the chunked form would pad anyway, so the
// extra room is free). A memory's routed tokens are gathered into its buffer in time order,
// the buffer's unused tail is padding made of steps that leave the state unchanged (g = 0, beta = 0,
// k = 0), all M buffers run as a batch of B*M sequences of one deltanet.Chunked call, and the outputs
// are gathered back with their routing weights. The shared memory sees every token and runs as a
// plain deltanet call over the stream. The recurrence then costs M*capacity + T token-steps per row
// (2.5T + T at the defaults) instead of E*T, so the layer's cost follows k, not M.
//
// Overflow: when more than capacity tokens of one call (one batch row) are routed to memory m, m keeps
// the first capacity of them in time order and drops the later ones. A dropped token is, for m alone,
// as if it had not been routed there: m neither decays nor updates at it (its state goes on from the
// last kept token) and gives it no output; the token's other chosen memory (and the shared memory)
// still read and write it with their usual weights, nothing is renormalised, and the router still
// counts it in the balance loss. Stats.Dropped (metric "dropped") is the fraction of the call's top-k
// assignments dropped. Keeping the earliest tokens keeps a call causal: whether a token is kept depends
// only on the tokens before it in the same call. It does depend on the call's length (the capacity
// grows with T), so a sequence processed in pieces with the state carried equals one call only where
// no piece and not the whole call overflows (layer_test.go checks equality when nothing overflows, and
// mix_test.go checks overflow against the gathered reference with the dropped tokens removed).
// OpenSparseLLMs' MoM and fla's transform keep instead the last capacity tokens ("discard tokens exceed
// capacity and is far from now"), which makes an early token's routing depend on later ones, and
// their capacity option c gives ceil(c * T) tokens per memory (our capacity_factor = c * M / k).
//
// Masked (Mix; capacity_factor 0, and any call whose capacity would be T, e.g. the T = 1 decode step):
// at an unrouted token memory m takes g = 0 (alpha = 1), beta = 0 and k = 0, a step that leaves S^m
// exactly as it was, and its output is multiplied by 0; all E = M (+1 shared) memories run as E*H
// heads of one deltanet.Chunked call over every token, which costs E times a gated DeltaNet's
// recurrence. It never drops a token and is the reference the buffers are tested against: without
// overflow both give the same outputs, states and gradients (float64, layer_test.go and mix_test.go),
// and mix_test.go holds the masked form equal to gathering each memory's tokens, running
// deltanet.Naive on that subsequence and scattering the outputs back. bench_test.go measures the layer
// against a gated DeltaNet layer of the same heads and widths.
//
// # Document starts (packed rows; ApplyDocuments)
//
// Every memory, routed there or not, restarts at a document start: the masked form passes the starts to
// deltanet.ChunkedDocuments over all E*H heads (an unrouted token is still a no-op step of each memory);
// a capacity buffer holds only a memory's routed tokens, so its entry j restarts when its token's
// document differs from entry j-1's (the start token itself may have gone elsewhere), and its padding
// takes the row's last document, so a memory that saw nothing of the last document ends at zero. The
// shared memory and the short convolutions restart as in deltanet. Packed == separate holds where
// nothing overflows: a buffer's length follows the call's, so a document alone can overflow where the
// packed row does not (and the reverse), as with any split of a call.
//
// # Cost
//
// bench_test.go, B = 8, H = 4, d_k = d_v = 64, float32, Go backend, fwd+bwd, ratio of CPU time to a
// gated DeltaNet layer of the same heads and widths (on 2 cores shared with other jobs, load 7-11):
// with the shared memory 3.5x at T = 256 and 3.4x at T = 1024 (the masked form: 4.0x and 4.5x); without
// it 2.5x and 2.5x (masked: 3.3x and 3.5x). That is about this design's floor: the routed memories run
// k * capacity_factor = 2.5 recurrences per token, the shared memory one more, and the k, v, beta and g
// projections and short convolutions run for all E memories over every token (E times a GDN layer's;
// at capacity_factor 0.1, with almost no routed recurrence left, the layer without the shared memory
// still costs as much as a GDN layer). Reaching 1.5x a GDN layer would need k = 1 without the shared
// memory, or narrower memories.
//
// # Load balancing and logging
//
// BalanceLoss is flash-linear-attention's load_balancing_loss_func (fla/models/mom/modeling_mom.py):
// over the router rows q, with p_q the router probabilities and S_q the top-k memories,
// F_m = mean_q [m in S_q] (sums to k), P_m = mean_q p_qm and loss = M sum_m F_m P_m (k for a uniform
// router; no division by k). As in FLA the rows of all layers are pooled into one population, not one
// term per layer: in a training graph (GoMLX's Store.IsTraining) every MoM layer adds its router's
// column sums to a graph-scoped pool (a GoMLX graph parameter) and adds aux_loss_weight times the
// increase of the pooled loss to GoMLX's regularization loss (train.AddRegularizationLoss). The terms
// telescope, so after the last layer the graph's regularization loss holds exactly aux_loss_weight *
// the pooled loss, with its gradient, and no trainer or model code collects logits; PooledBalanceLoss(g)
// returns the pooled loss for logging. aux_loss_weight is FLA's aux_loss_scale. It also writes the
// call's load F/k (sums to 1) into the non-trainable variable LoadVariable ("router_load", [M] float64)
// under its scope, for a trainer to read after each step. ApplyWithStats (the Introspector interface,
// like titans.Introspector) returns the call's statistics as graph nodes with Stats.Metrics naming them
// "load_m", "router_prob_m", "balance_loss" (this call's rows alone) and "dropped".
//
// Where it differs from FLA: the mixer sees no attention mask, so every row has weight 1 (FLA with
// attention_mask = None; BalanceLoss takes row weights, and the golden test uses FLA's masked cases);
// the pool is per graph, so a graph that applies the layers to several segments (streamed or truncated
// BPTT) pools all their rows, which is FLA's loss over the concatenated segments; layers with different
// numbers of memories or weights form separate pools whose losses add; and FLA adds the loss only when
// labels are given, ours in every training graph.
//
// # Choices where the paper is silent or that fixed shapes force
//
//   - The short convolutions run over the full token stream, before routing: a memory's key at token t
//     mixes the memory's projections of tokens t-3..t whether or not those were routed to it (fla's MoM
//     gathers first and convolves each memory's own subsequence). One conv
//     kernel per feature (q, k, v) is shared by all memories; the caches hold every memory's projected
//     inputs (conv_k, conv_v are E times wider than a gated_deltanet layer's).
//   - With k = 1 the renormalised weight is exactly 1, so the router learns only from the balance loss;
//     use k >= 2 (the default) for a router trained by the main loss too.
//   - With M = 1 there is nothing to route: no router variable is made and, without the shared memory,
//     the layer is exactly a gated_deltanet layer with the same variable names and state
//     (layer_test.go checks outputs, states and every gradient).
//   - Ties in the router's top-k go to the lower memory index (as a stable sort would order them).
//
// The carried state is "S" [B, E*H, d_k, d_v] (head e*H + h is head h of memory e; the shared memory is
// e = M) and the conv caches. A call with T = 1 takes the per-token step, so decoding one token at a time
// equals the chunk form.
//
// Shape legend: B batch, T time, M routed memories, E = M (+1 with the shared memory), H heads per
// memory, K = d_k, V = d_v, D = d_model.
package mom
