// Package checkpoints saves and resumes training state safely, exports trained weights as a
// safetensors + config.json pair that other tools can load, imports such a pair for evaluation, and
// exports the carried memory state of a model after a prompt so a stream can continue elsewhere.
//
// # Checkpoints (save and resume)
//
// GoMLX's checkpoint handler (imported as mlckpt) writes a checkpoint as two files,
// checkpoint-<n>-<time>-step-<s>.{bin,json}, straight into its directory: a crash mid-save leaves a
// truncated pair that it will try to load next time. Manager publishes each checkpoint as a whole
// directory instead:
//
//	checkpoints/
//	  ckpt-000003-step-00000400/   checkpoint-*.bin, checkpoint-*.json, engram.json
//	  ckpt-000004-step-00000600/   ...
//	  .staging-<pid>-<ns>/         a manager's working directory; never loaded from
//
// A save empties its manager's staging directory, lets the GoMLX handler write its pair there, syncs the
// files, writes the sidecar engram.json (step, data position, resolved config, GoMLX version, and the
// size and SHA-256 of every file it covers) last, and only then renames the directory to its ckpt-*
// name. A crash at any point before the rename leaves the published checkpoints untouched (the next Open
// removes the dead process's staging directory); a ckpt-* directory without a sidecar is incomplete and
// ignored; a sidecar whose checksums do not match its files is a corrupted checkpoint and an error
// naming the file. The last Keep complete checkpoints are kept.
//
// On Open the newest complete checkpoint is verified and hard-linked (or copied) into a fresh staging
// directory, where the GoMLX handler reads it into memory; the model's variables take its values as
// they are created. Each manager has its own staging directory, so opening a run for export or
// evaluation while it trains is safe. Metric variables of earlier sessions (GoMLX names them with a
// fresh UUID per session) are dropped so they do not pile up in every later checkpoint.
//
// # Safetensors
//
// The format (https://github.com/huggingface/safetensors, "Format"):
//
//	[8 bytes]  N, the header length, unsigned 64-bit little-endian
//	[N bytes]  a UTF-8 JSON object, starting with '{', optionally padded with trailing spaces:
//	           {"__metadata__": {"key": "value", ...},            (optional; strings only)
//	            "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//	[rest]     the byte buffer: each tensor little-endian, row-major, at [begin, end) relative to the
//	           buffer's start; the tensors cover the buffer exactly, without gaps or overlaps
//
// Our writer pads the header so the buffer starts at a multiple of 8 and orders tensors by decreasing
// element size, so every tensor starts at a multiple of its element size (zero-copy readers can map
// it). The reader checks every number before using it and names the file and tensor on error.
//
// # Export and import
//
// Export writes model.safetensors (the trainable variables as float32, or bfloat16 or float64 on
// request) and then config.json (Manifest: architecture, tokenizer, Engram and GoMLX versions, the
// tensor-name -> scope-path mapping and the SHA-256 of the weights file), each via a temporary file and
// a rename. The architecture is the model config encoded with its YAML field names, so config.json reads
// like the experiment files. Tensor names are scope paths with "." for "/" ("/layer_0/attention/q/weight"
// -> "layer_0.attention.q.weight"), as PyTorch state dicts are named. Import checks the checksum (an
// export interrupted between its two renames is reported, not half-loaded) and NewStore returns a fresh
// store whose variables take the imported values as the model creates them.
//
// # Memory state
//
// SaveState writes a model's flat carried state (Model.StateSpecs names: "layer_0/k", "layer_1/S", ...)
// in its own dtype as safetensors, with the number of tokens consumed and the architecture in the
// metadata; LoadState checks names, shapes, dtypes and architecture before returning the tensors in spec
// order, ready to feed the next segment.
package checkpoints
