// Command datagen writes a synthetic task's rows (input_ids and labels, list<int32>) to an Arrow IPC
// file or stream or a Parquet file, atomically. Rows are drawn as the trainer's generator source
// draws them (batches of -batch_size from -seed and -split), so training from the file in pad mode
// without shuffling, with the same batch size, sees the same batches.
//
//	datagen -task mqar -rows 100000 -seq_len 256 -vocab 8192 -pairs 64 -format parquet -out mqar.parquet
//	datagen -task passkey -rows 1000 -seq_len 4096 -depth 0.5 -format arrow -out passkey.arrow
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/engramlx/engram/data"
)

func main() {
	var (
		task      = flag.String("task", "mqar", "mqar, passkey, needle, copy or selective_copy")
		rows      = flag.Int("rows", 1000, "rows to write")
		seqLen    = flag.Int("seq_len", 256, "tokens per row (bytes for passkey and needle)")
		seed      = flag.Uint64("seed", 1, "random seed")
		split     = flag.Uint64("split", 0, "0 train, 1 eval, 2 test: splits never share a random stream")
		batchSize = flag.Int("batch_size", 32, "rows are drawn as generator batches of this size")
		format    = flag.String("format", data.OutParquet, "parquet, arrow (IPC file) or arrow-stream")
		out       = flag.String("out", "", "output path (required)")

		vocab        = flag.Int("vocab", 8192, "mqar, copy, selective_copy: vocabulary size")
		pairs        = flag.Int("pairs", 64, "mqar: key-value pairs per row")
		powerA       = flag.Float64("power_a", 0.01, "mqar: power-law exponent of the query gaps")
		randomFiller = flag.Bool("random_filler", false, "mqar: random filler tokens instead of 0")
		depth        = flag.Float64("depth", 0.5, "passkey, needle: needle depth in [0, 1]")
		randomDepth  = flag.Bool("random_depth", false, "passkey, needle: a random depth per row")
		digits       = flag.Int("digits", 5, "passkey: key digits")
		keys         = flag.Int("keys", 1, "needle: keys with needles (> queries: distractors)")
		values       = flag.Int("values", 1, "needle: values per queried key")
		queries      = flag.Int("queries", 1, "needle: keys asked about")
		length       = flag.Int("length", 16, "copy: tokens to copy")
		tokens       = flag.Int("tokens", 16, "selective_copy: tokens to remember")
	)
	flag.Parse()
	var t data.Task
	switch *task {
	case "mqar":
		t = data.MQAR{Vocab: *vocab, SeqLen: *seqLen, NumPairs: *pairs, PowerA: *powerA, RandomFiller: *randomFiller}
	case "passkey":
		t = data.Passkey{SeqLen: *seqLen, Depth: *depth, RandomDepth: *randomDepth, Digits: *digits}
	case "needle":
		t = data.Needle{SeqLen: *seqLen, Depth: *depth, RandomDepth: *randomDepth, Keys: *keys, Values: *values, Queries: *queries}
	case "copy":
		t = data.Copy{Vocab: *vocab, SeqLen: *seqLen, Length: *length}
	case "selective_copy":
		t = data.SelectiveCopy{Vocab: *vocab, SeqLen: *seqLen, Tokens: *tokens}
	default:
		fail(fmt.Errorf("-task %q: want mqar, passkey, needle, copy or selective_copy", *task))
	}
	if *out == "" {
		fail(fmt.Errorf("-out is required"))
	}
	src, err := data.NewTaskSource(t, *batchSize, *seed, *split)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := data.WriteTask(*out, *format, src, *rows); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %d rows of %s to %s (%s) in %.1fs\n", *rows, t, *out, *format, time.Since(start).Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "datagen:", err)
	os.Exit(1)
}
