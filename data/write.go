package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Output formats of Writer: the Arrow IPC file ("ARROW1" framing, random access), the Arrow IPC
// stream (what Hugging Face datasets writes), and Parquet (snappy-compressed).
const (
	OutArrowFile   = "arrow"
	OutArrowStream = "arrow-stream"
	OutParquet     = "parquet"
)

// flushTokens is how many buffered tokens make a record batch (Arrow) or row group (Parquet).
const flushTokens = 1 << 22

// rowSchema is what writers write: input_ids and labels, both list<int32>.
var rowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "input_ids", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	{Name: "labels", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
}, nil)

// Writer writes rows (input_ids and labels columns) to an Arrow IPC file or stream or a Parquet file.
type Writer struct {
	ids, labels *array.ListBuilder
	buffered    int // tokens in the builders
	flushAt     int // tokens that make a record batch or row group
	write       func(arrow.RecordBatch) error
	close       func() error
}

// NewWriter starts writing rows to w in format OutArrowFile, OutArrowStream or OutParquet.
func NewWriter(w io.Writer, format string) (*Writer, error) {
	mem := memory.NewGoAllocator()
	wr := &Writer{
		ids:     array.NewListBuilder(mem, arrow.PrimitiveTypes.Int32),
		labels:  array.NewListBuilder(mem, arrow.PrimitiveTypes.Int32),
		flushAt: flushTokens,
	}
	switch format {
	case OutArrowFile:
		fw, err := ipc.NewFileWriter(w, ipc.WithSchema(rowSchema), ipc.WithAllocator(mem))
		if err != nil {
			return nil, err
		}
		wr.write, wr.close = fw.Write, fw.Close
	case OutArrowStream:
		sw := ipc.NewWriter(w, ipc.WithSchema(rowSchema), ipc.WithAllocator(mem))
		wr.write, wr.close = sw.Write, sw.Close
	case OutParquet:
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithAllocator(mem))
		pw, err := pqarrow.NewFileWriter(rowSchema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
		if err != nil {
			return nil, err
		}
		wr.write, wr.close = pw.Write, pw.Close
	default:
		return nil, fmt.Errorf("output format %q: want %s, %s or %s", format, OutArrowFile, OutArrowStream, OutParquet)
	}
	return wr, nil
}

// Append adds one row; ids and labels must have the same length.
func (w *Writer) Append(ids, labels []int32) error {
	if len(ids) != len(labels) {
		return fmt.Errorf("row of %d input_ids has %d labels", len(ids), len(labels))
	}
	for _, pair := range []struct {
		b *array.ListBuilder
		v []int32
	}{{w.ids, ids}, {w.labels, labels}} {
		pair.b.Append(true)
		pair.b.ValueBuilder().(*array.Int32Builder).AppendValues(pair.v, nil)
	}
	w.buffered += len(ids)
	if w.buffered >= w.flushAt {
		return w.flush()
	}
	return nil
}

// flush writes the buffered rows as one record batch / row group.
func (w *Writer) flush() error {
	n := w.ids.Len()
	if n == 0 {
		return nil
	}
	ids, labels := w.ids.NewArray(), w.labels.NewArray()
	defer ids.Release()
	defer labels.Release()
	rec := array.NewRecordBatch(rowSchema, []arrow.Array{ids, labels}, int64(n))
	defer rec.Release()
	w.buffered = 0
	return w.write(rec)
}

// Close writes what is buffered and finishes the file (footers); it does not close the io.Writer.
func (w *Writer) Close() error {
	err := w.flush()
	if cerr := w.close(); err == nil {
		err = cerr
	}
	w.ids.Release()
	w.labels.Release()
	return err
}

// WriteRows writes all rows to w in the given format.
func WriteRows(w io.Writer, format string, rows *Rows) error {
	wr, err := NewWriter(w, format)
	if err != nil {
		return err
	}
	for i := 0; i < rows.Len(); i++ {
		if err := wr.Append(rows.Row(i)); err != nil {
			wr.Close()
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return wr.Close()
}

// WriteFile writes rows to path atomically: into a temporary file in the same directory, synced,
// then renamed over path, so a reader never sees a half-written file.
func WriteFile(path, format string, rows *Rows) error {
	return fsutil.WriteFileWith(path, func(w io.Writer) error { return WriteRows(w, format, rows) })
}

// WriteTask writes n rows of a generator source to path (atomically), in the order GenerateRows
// draws them, streaming batch by batch so n is not limited by memory.
func WriteTask(path, format string, src *GeneratorSource, n int) error {
	if n < 1 || src.BatchSize < 1 {
		return fmt.Errorf("%s: cannot write %d rows in batches of %d", src.Name(), n, src.BatchSize)
	}
	return fsutil.WriteFileWith(path, func(w io.Writer) error {
		wr, err := NewWriter(w, format)
		if err != nil {
			return err
		}
		written := 0
		for index := int64(0); written < n; index++ {
			b, err := src.BatchAt(index)
			if err != nil {
				wr.Close()
				return err
			}
			for r := 0; r < b.Size && written < n; r++ {
				if err := wr.Append(b.Row(r)); err != nil {
					wr.Close()
					return err
				}
				written++
			}
		}
		return wr.Close()
	})
}
