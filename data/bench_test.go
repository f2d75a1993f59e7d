package data

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Benchmark sizes: a corpus of 25,000 documents of 2,048 int32 tokens = 51.2M tokens.
const (
	benchRows   = 25000
	benchRowLen = 2048
	benchVocab  = 50257
)

// writeBenchCorpus writes an input_ids-only corpus (list<int32>, record batches / row groups of
// 1,000 rows as Hugging Face datasets writes them) in format to path.
func writeBenchCorpus(b *testing.B, path, format string) {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "input_ids", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)}}, nil)
	var buf bytes.Buffer
	var write func(arrow.RecordBatch) error
	var closeW func() error
	if format == OutParquet {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false))
		w, err := pqarrow.NewFileWriter(schema, &buf, props, pqarrow.DefaultWriterProps())
		if err != nil {
			b.Fatal(err)
		}
		write, closeW = w.Write, w.Close
	} else {
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		write, closeW = w.Write, w.Close
	}
	rng := rand.New(rand.NewPCG(1, 1))
	row := make([]int32, benchRowLen)
	for a := 0; a < benchRows; a += 1000 {
		lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int32)
		vb := lb.ValueBuilder().(*array.Int32Builder)
		for r := a; r < a+1000; r++ {
			for t := range row {
				row[t] = int32(rng.IntN(benchVocab))
			}
			lb.Append(true)
			vb.AppendValues(row, nil)
		}
		arr := lb.NewArray()
		rec := array.NewRecordBatch(schema, []arrow.Array{arr}, 1000)
		if err := write(rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
		arr.Release()
		lb.Release()
	}
	if err := closeW(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// cpuSeconds is the user + system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkReadBatches reads a 51.2M-token file (HF-style Arrow stream, or Parquet) into [8, 2048]
// packed batches: open, decode, check every id against the vocabulary, then assemble every batch of
// one epoch. Reported as tokens per second of the whole path.
func BenchmarkReadBatches(b *testing.B) {
	dir := b.TempDir()
	for _, format := range []string{OutArrowStream, OutParquet} {
		path := filepath.Join(dir, "corpus."+format)
		writeBenchCorpus(b, path, format)
		b.Run(format, func(b *testing.B) {
			const batch, seqLen = 8, 2048
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src, err := OpenFiles(FileConfig{Path: path, Mode: ModePack, Prefetch: -1}, batch, seqLen, benchVocab, 0)
				if err != nil {
					b.Fatal(err)
				}
				batches := src.(*FileSource).Examples() / batch
				for index := int64(0); index < batches; index++ {
					if _, err := src.BatchAt(index); err != nil {
						b.Fatal(err)
					}
				}
			}
			tokens := float64(benchRows*benchRowLen) * float64(b.N)
			b.ReportMetric(tokens/b.Elapsed().Seconds(), "tok/s")
			// On a shared machine wall time depends on the neighbours; tokens per CPU-second of this
			// process (all threads, GC included) does not.
			b.ReportMetric(tokens/(cpuSeconds()-cpu0), "tok/cpu-s")
		})
	}
}
