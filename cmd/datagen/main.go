// Command datagen writes a synthetic task's rows (input_ids and labels, list<int32>) to an Arrow IPC
// file or stream or a Parquet file, atomically (its directory is created). Rows are drawn as the
// trainer's generator source draws them (batches of -batch_size from -seed and -split), so training
// from the file in pad mode without shuffling, with the same batch size, sees the same batches.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/internal/cli"
)

const usage = `Usage: datagen -task TASK -out FILE [flags]

  datagen -task mqar -rows 100000 -seq_len 256 -vocab 8192 -pairs 64 -format parquet -out mqar.parquet
  datagen -task passkey -rows 1000 -seq_len 4096 -depth 0.5 -format arrow -out passkey.arrow`

// share is the passkey's random_filler share of rows for the -random_filler flag.
func share(on bool) float64 {
	if on {
		return 1
	}
	return 0
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	c := cli.New("datagen", "write a synthetic task's rows (MQAR, passkey, needle, copy) to Arrow or Parquet", usage, stdout, stderr)
	f := c.Flags
	task, out := f.String("task", "mqar", "mqar, passkey, needle, copy or selective_copy"), f.String("out", "", "output path (required)")
	rows, seqLen := f.Int("rows", 1000, "rows to write"), f.Int("seq_len", 256, "tokens per row (bytes for passkey and needle)")
	seed, split := f.Uint64("seed", 1, "random seed"), f.Uint64("split", 0, "0 train, 1 eval, 2 test: splits never share a random stream")
	batchSize := f.Int("batch_size", 32, "rows are drawn as generator batches of this size")
	format := f.String("format", data.OutParquet, "parquet, arrow (IPC file) or arrow-stream")
	vocab, pairs := f.Int("vocab", 8192, "mqar, copy, selective_copy: vocabulary size"), f.Int("pairs", 64, "mqar: key-value pairs per row")
	powerA := f.Float64("power_a", 0.01, "mqar: power-law exponent of the query gaps")
	randomFiller := f.Bool("random_filler", false, "mqar: random filler tokens instead of 0; passkey: random prose instead of the repeated haystack")
	depth, randomDepth := f.Float64("depth", 0.5, "passkey, needle: needle depth in [0, 1]"), f.Bool("random_depth", false, "passkey, needle: a random depth per row")
	digits, keys := f.Int("digits", 5, "passkey: key digits"), f.Int("keys", 1, "needle: keys with needles (> queries: distractors)")
	values, queries := f.Int("values", 1, "needle: values per queried key"), f.Int("queries", 1, "needle: keys asked about")
	length, tokens := f.Int("length", 16, "copy: tokens to copy"), f.Int("tokens", 16, "selective_copy: tokens to remember")
	if code, ok := c.Parse(args); !ok {
		return code
	}
	tasks := map[string]data.Task{
		"mqar":           data.MQAR{Vocab: *vocab, SeqLen: *seqLen, NumPairs: *pairs, PowerA: *powerA, RandomFiller: *randomFiller},
		"passkey":        data.Passkey{SeqLen: *seqLen, Depth: *depth, RandomDepth: *randomDepth, Digits: *digits, RandomFiller: share(*randomFiller)},
		"needle":         data.Needle{SeqLen: *seqLen, Depth: *depth, RandomDepth: *randomDepth, Keys: *keys, Values: *values, Queries: *queries},
		"copy":           data.Copy{Vocab: *vocab, SeqLen: *seqLen, Length: *length},
		"selective_copy": data.SelectiveCopy{Vocab: *vocab, SeqLen: *seqLen, Tokens: *tokens},
	}
	t, ok := tasks[*task]
	switch {
	case !ok:
		return c.Usagef("-task %q: want mqar, passkey, needle, copy or selective_copy", *task)
	case *out == "":
		return c.Usagef("-out is required")
	}
	src, err := data.NewTaskSource(t, *batchSize, *seed, *split)
	if err != nil {
		return c.Exit(err)
	}
	start := time.Now()
	if err := data.WriteTask(*out, *format, src, *rows); err != nil {
		return c.Exit(err)
	}
	fmt.Fprintf(stdout, "wrote %d rows of %s to %s (%s) in %.1fs\n", *rows, t, *out, *format, time.Since(start).Seconds())
	return cli.ExitOK
}
