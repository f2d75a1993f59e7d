// Package layers holds the Mixer contract and the shared blocks every model is built from.
//
// The Mixer contract (mixer.go): a sequence-mixing layer maps x [batch, time, dModel] and an incoming
// state to y [batch, time, dModel] and the outgoing state; nil state means start of sequence. States
// are flat, named lists (StateSpec) so they can be threaded through unrolled graphs or carried between
// graph executions, which is how long inputs stream in constant memory.
//
// Blocks:
//   - RMSNorm (norm.go): y = x / sqrt(mean(x^2) + eps) * w  (Zhang & Sennrich, 2019).
//   - SwiGLU MLP (mlp.go): W_down (SiLU(W_gate x) * W_up x)  (Shazeer, 2020).
//   - Token embedding and an optionally tied output head (mlp.go).
//   - Rotary position embedding, RoPE (rope.go): pairs (x_i, x_{i+d/2}) rotated by angle p * base^(-2i/d)
//     (Su et al., 2021, "RoFormer").
//   - Causal softmax attention and sliding-window attention as Mixers (attention.go), with a KV cache
//     as their streaming state. Optional persistent tokens (Titans' persistent memory, Behrouz et al.
//     2024, section 3.3): N_p learned tokens whose keys and values, through the k and v projections and
//     without RoPE, come before all others and are seen by every query. ApplyWithContext runs attention
//     over [persistent ; context ; x] with context_t at x_t's position (Titans' MAC segment attention).
//   - Sequence helpers (seqops.go): chunking, causal shift, short causal depthwise convolution with a
//     cache, prefix sums.
//   - Document starts (documents.go): DocumentMixer, the contract for rows packing several documents
//     (docStart [B, T]); DocumentIDs numbers a row's documents by a cumulative sum of the starts;
//     ShortConvDocuments zeroes the taps that reach across a start (ConvTapKeep) and keeps only the last
//     document's inputs in the cache (ConvCacheKeep); attention adds a same-document mask to its causal
//     or sliding-window mask (the cached keys count as the document before the row's first start). Its
//     KV cache is positional: after a packed row it still holds the earlier documents' keys, so a stream
//     continued from that state sees them (Attention.ApplyDocuments). RoPE positions restart at each
//     start (pos_t = t - s for a document starting at s inside the row, the stream position p + t before
//     the row's first start; documentPositions in rope.go, a running maximum of t * docStart by doubling),
//     so in-row outputs are exact, with persistent tokens too: scores against keys without a position
//     (the persistent tokens) would otherwise depend on a document's place in the row.
//
// Shape legend: B batch, T time, D model width, H heads, Dh head width, C chunk length.
package layers
