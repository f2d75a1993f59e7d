// Package eval measures trained models on long contexts -- the evaluations of RULER (Hsieh et al.,
// 2024), BABILong-style passkey retrieval (Mohtashami & Jaggi, 2023) and Zoology's MQAR (Arora et al.,
// 2023) -- over grids of context lengths x needle depths (or MQAR pair counts), and writes CSV and
// Markdown tables, NIAH-style heatmaps and accuracy-vs-length curves comparing several runs.
//
// # Streaming
//
// Every input, whatever its length, runs through one compiled segment step (Streamer):
//
//	(ids [B, S], positions [B, P], state_0..state_k) -> (logits [B, P, V], state'_0..state'_k)
//
// executed once per segment of S tokens with the model's flat state (model.Model.StateSpecs: KV caches,
// conv caches, memory matrices) fed back in. Logits are computed only at the P labelled positions of a
// segment. Memory therefore holds one segment's activations plus the fixed-size state, independent of
// the context length; the start state is zeros (the Mixer contract's "start of sequence"). Full
// attention keeps a KV cache of attention.max_context tokens: longer contexts are reported (an
// ExceedsCacheError, a cell marked "exceeds cache"), never silently truncated; each stream's cache holds
// only the input's length rounded up to a power of two (a 64-token row does not allocate max_context).
// A last, shorter segment is padded after the real tokens, which a causal model never sees from a scored position. Chunked
// memories stream exactly only at their chunk boundaries, so the segment length must be a multiple of
// them (Titans: chunk_size, and segment_size for MAC; the default 512 is).
//
// # Scoring (teacher forcing)
//
// Rows are (input_ids, labels) as everywhere in Engram: labels[t] is the token that must follow
// input_ids[t]. At each labelled position the argmax and log p(target) are read from the logits. A
// row's answer is right under greedy decoding exactly when every one of its labelled positions has
// argmax = target, so exact match here equals greedy exact match without a decoding loop.
//
//	passkey            exact match of the key's digits (axis: depth)
//	needle, needle_*   RULER's recall: the fraction of asked-for values whose digits are all right
//	                   (single needle, multi-key, multi-value, multi-query; axis: depth)
//	mqar               fraction of queries answered (axis: pairs); rows generated or read from
//	                   Arrow/Parquet files, whose rows are grouped by (length, labelled positions)
//	copy               fraction of tokens reproduced after the delay
//	perplexity         bits per token = mean -log2 p(target) over windows of the context length cut
//	                   from a dataset file (bits per byte for byte-level models)
//
// # Test files
//
// With eval.file (one or more files, globs or directories; cmd/eval's -file repeats) mqar, passkey and
// the needles score the files' rows instead of generated ones, and the grid is what the files hold:
// mqar groups rows by (length, labelled positions), passkey and the needles by (length, depth), the
// depth read from a float "depth" column when the file has one, otherwise taken as where the answer's
// first value first appears in the row, as a fraction of its length rounded to 0.1 (near the
// generator's depth at long lengths; the prompt's intro and question offset it at short ones).
//
// Every cell also reports the token accuracy and bits per token of its labelled positions. Generated
// rows come from data's generators on the test split (SplitTest), never the training or eval rows.
//
// # Outputs
//
// Main writes, per run, <task>.csv (one line per cell), <task>.md (axis x length table of accuracy in
// percent), <task>_heatmap.png (x = context length, y = depth, colour = accuracy, grey = not measured)
// and, per task, <task>_curve.png (mean accuracy over depths against length, one line per run), all
// written atomically.
package eval
