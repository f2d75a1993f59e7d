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
// segments): the memory is the only path between segments (unless carry_state, below). m = 0 is
// therefore the backbone applied to each segment on its own.
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
// # A sequence model with a carried state
//
// RMT implements model.Sequence like the decoder stack it wraps, so training, every evaluation task,
// the streaming path and checkpoint / state export see the same interface. Its carried state is the
// memory [B, m, D] (absent when m = 0), followed, with carry_state, by the backbone's own state: a
// recurrent backbone (gated DeltaNet, Titans) then also carries its S from one segment to the next,
// besides the memory tokens (configs refuses carry_state with full attention, whose KV cache would grow
// with every segment). Hidden on T tokens unrolls ceil(T / S) segments from the given state, so one call
// equals any split into calls of whole segments with the state carried (float64, tested for attention,
// gated DeltaNet and Titans LMM backbones); the evaluation streamer rounds its segment down to a
// multiple of S so that streamed segment boundaries are the trained ones, and a 1M-token stream holds
// one segment's activations and the memory.
//
// # Curriculum
//
// The BABILong recipe of training on 1..n segments is a schedule of the batches, not a property of the
// model: data.Curriculum draws, per batch index, a segment count k and asks the task for a row of k
// segments; different k compile different graphs (GoMLX caches one per input shape).
//
// # Training
//
// An experiment's `rmt:` section (Config) switches the wrapper on; model.NewSequence then returns the
// wrapped stack, which the trainer trains like any other sequence model. configs/rmt_copy.yaml and
// rmt_copy_nomem.yaml run the paper's copy task with and without memory; configs/rmt_passkey.yaml the
// byte-level passkey task.
//
// Document starts: an RMT does not restart at document starts inside a row (packed rows, data.mode:
// pack). Its memory tokens are read and written once per segment, so a start inside a segment has no
// state to reset at that token; RMT is not a model.DocumentSequence, and training refuses packed rows
// with resets for it (set reset_at_document_start: false in data.train and data.eval, or use pad mode).
//
// Scope names (checkpoint keys): the backbone's own, plus rmt/memory [m, D].
package rmt
