// Package rmt wraps any decoder stack in the Recurrent Memory Transformer (Bulatov, Kuratov and Burtsev,
// "Recurrent Memory Transformer", NeurIPS 2022; Bulatov et al., "Scaling Transformer to 1M tokens and
// beyond with RMT", 2023).
//
// # Segment recurrence
//
// A row of T tokens is cut into K = ceil(T / S) segments of S tokens (the last may be shorter). m learned
// vectors M_0 [m, D] are the first segment's memory. For segment s with token embeddings E_s [S, D]:
//
//	read+write (default):  H = backbone([M_s ; E_s ; M_s])      (m + S + m positions)
//	                       Y_s = H[m : m+S],  M_{s+1} = H[m+S : 2m+S]
//	read-only (ablation):  H = backbone([M_s ; E_s])            (m + S positions)
//	                       Y_s = H[m : m+S],  M_{s+1} = H[0 : m]
//
// The backbone is causal, so the read copy (prefix) is seen by every token of the segment and the write
// copy (suffix) sees the whole segment; the next memory is the backbone's last (normalised) hidden state
// at the write positions. In the read-only ablation the memory is refreshed from the read positions,
// which under causal attention see only the memory itself: the memory then evolves but cannot take in
// anything from the segment, which is why the paper needs the write copy for decoder-only models.
// Y_s, the hidden states of the segment's tokens, go to the output head; memory positions get no
// logits and no loss. Every segment starts the backbone from its zero state (no KV cache across
// segments): the memory is the only path between segments. m = 0 is therefore the backbone applied to
// each segment on its own.
//
// The initial memory M_0 is drawn from N(0, 1) rather than the embedding scale 1/sqrt(D): every later
// memory is an RMSNorm output, whose elements have RMS about 1, so M_0 starts at the scale the
// backbone sees from segment 2 on.
//
// # Truncated back-propagation through segments
//
// Training unrolls all K segments in one graph. With BPTTDepth = d > 0 the memory entering segment s
// is passed through StopGradient for every s <= K - d (the recurrent wrapper of the RMT code detaches
// the early segments' memory the same way): the last segment's loss reaches segments K-d .. K-1 and no
// loss reaches back more than d segments. The gradient of the last segment's loss with respect to the
// input embeddings of segment i is then exactly zero for i < K - d (tested). d = 0 keeps every path.
//
// # Streaming
//
// Stream compiles one segment step, (ids [B, S], M_s) -> (Y_s, M_{s+1}), and carries the memory from
// one execution to the next, so an input of any length is evaluated in constant memory. K streamed
// steps equal the K-segment unrolled graph (float64, tested).
//
// # Curriculum
//
// Curriculum draws, per batch index, a segment count k in 1..n and asks a task for a row of k
// segments (the BABILong recipe of training on 1..n segments). Different k compile different graphs
// (GoMLX caches one per input shape).
//
// # Training
//
// An experiment's `rmt:` section (Config) switches the wrapper on; the trainer then computes the
// labelled logits from Hidden instead of the backbone's own forward pass (train/rmt.go), and
// configs/rmt_copy.yaml / rmt_copy_nomem.yaml run the paper's copy task with and without memory.
//
// Scope names (checkpoint keys): the backbone's own, plus rmt/memory [m, D].
package rmt
