package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// File formats. Arrow covers both IPC layouts: the random-access file ("ARROW1" magic) and the
// stream, which is what Hugging Face datasets writes into its data-*.arrow files.
const (
	FormatAuto    = "auto"
	FormatArrow   = "arrow"
	FormatParquet = "parquet"
)

var (
	arrowMagic   = []byte("ARROW1")
	parquetMagic = []byte("PAR1")
)

// sniff names the format of a file's content: "parquet", "arrow-file" or "arrow-stream".
func sniff(data []byte) string {
	switch {
	case bytes.HasPrefix(data, parquetMagic):
		return "parquet"
	case bytes.HasPrefix(data, arrowMagic):
		return "arrow-file"
	}
	return "arrow-stream"
}

// readBytes decodes one file's content (named file in errors) in the given format and appends its rows
// to rows. Decoder panics on corrupt input become errors naming the file and the rows read so far; on
// error, rows is left with only the complete rows of earlier files.
func readBytes(file string, data []byte, format string, spec readSpec, rows *Rows) (err error) {
	if len(data) == 0 {
		return fileError(file, 0, "", "empty file (0 bytes)")
	}
	kind := sniff(data)
	switch {
	case format == FormatParquet && kind != "parquet":
		return fileError(file, 0, "", "not a Parquet file (no PAR1 magic at the start)")
	case format == FormatArrow && kind == "parquet":
		return fileError(file, 0, "", "format arrow was asked for, but this is a Parquet file")
	}
	f := fileRows{file: file, spec: spec, rows: rows, base: rows.Len(), labelsCopyIDs: true}
	mark := len(rows.IDs)
	defer func() {
		if p := recover(); p != nil {
			err = fileError(file, int64(rows.Len()-f.base), "", "corrupt or truncated %s (decoder failed: %v)", kind, p)
		}
		if err != nil {
			rows.IDs, rows.Labels, rows.Offsets = rows.IDs[:mark], rows.Labels[:mark], rows.Offsets[:f.base+1]
		}
	}()
	// Reserve room for about as many tokens as the file has 4-byte words (grown further if needed),
	// so large files do not copy the token arrays over and over as they grow.
	rows.IDs = slices.Grow(rows.IDs, len(data)/4)
	rows.Labels = slices.Grow(rows.Labels, len(data)/4)
	alloc := newBoundedAllocator(len(data))
	switch kind {
	case "parquet":
		return f.readParquet(data, alloc)
	case "arrow-file":
		if err := checkFileFooter(data); err != nil {
			return fileError(file, 0, "", "corrupt Arrow IPC file: %v", err)
		}
		r, err := ipc.NewMappedFileReader(data, ipcLimits(alloc, len(data))...)
		if err != nil {
			return fileError(file, 0, "", "corrupt or truncated Arrow IPC file: %v", err)
		}
		defer r.Close()
		return f.readArrow(r.Schema(), r.Read)
	default:
		// Not ipc.NewReader: it copies every message body, and (arrow-go v18.8.0) it drops the size
		// limits, so a stream whose first word is garbage makes it allocate up to 2 GiB of metadata.
		r, err := ipc.NewReaderFromMessageReader(&byteMessages{data: data}, ipcLimits(alloc, len(data))...)
		if err != nil {
			return fileError(file, 0, "", "not a readable Arrow IPC stream or file: %v", err)
		}
		defer r.Release()
		return f.readArrow(r.Schema(), r.Read)
	}
}

// readArrow appends the record batches that next returns until io.EOF.
func (f *fileRows) readArrow(schema *arrow.Schema, next func() (arrow.RecordBatch, error)) error {
	cols, err := f.spec.resolve(f.file, schema)
	if err != nil {
		return err
	}
	row := int64(0)
	for batch := 0; ; batch++ {
		rec, err := next()
		if errors.Is(err, io.EOF) {
			return f.checkConvention(cols.labels >= 0)
		}
		if err != nil {
			return fileError(f.file, row, f.spec.mainColumn(), "record batch %d (rows %d onward) is corrupt or truncated: %v", batch, row, err)
		}
		if rec.NumCols() != int64(schema.NumFields()) {
			return fileError(f.file, row, "", "record batch %d has %d columns, the schema %d", batch, rec.NumCols(), schema.NumFields())
		}
		if err := f.addMain(rec.Column(cols.main), row); err != nil {
			return err
		}
		if cols.labels >= 0 {
			if err := f.setLabels(rec.Column(cols.labels), row); err != nil {
				return err
			}
		}
		row += rec.NumRows()
	}
}

// readParquet reads the needed columns one row group at a time.
func (f *fileRows) readParquet(data []byte, alloc memory.Allocator) error {
	pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(alloc)))
	if err != nil {
		return fileError(f.file, 0, "", "corrupt or truncated Parquet file: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, alloc)
	if err != nil {
		return fileError(f.file, 0, "", "unreadable Parquet schema: %v", err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return fileError(f.file, 0, "", "unreadable Parquet schema: %v", err)
	}
	cols, err := f.spec.resolve(f.file, schema)
	if err != nil {
		return err
	}
	row := int64(0)
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		n := pf.MetaData().RowGroup(rg).NumRows()
		if err := f.readRowGroup(fr, rg, cols.main, f.spec.mainColumn(), row, n, f.addMain); err != nil {
			return err
		}
		if cols.labels >= 0 {
			if err := f.readRowGroup(fr, rg, cols.labels, f.spec.Labels, row, n, f.setLabels); err != nil {
				return err
			}
		}
		row += n
	}
	return f.checkConvention(cols.labels >= 0)
}

// readRowGroup reads column col of row group rg (rows [row, row+n) of the file) and hands its chunks to add.
func (f *fileRows) readRowGroup(fr *pqarrow.FileReader, rg, col int, name string, row, n int64, add func(arrow.Array, int64) error) error {
	chunked, err := fr.RowGroup(rg).Column(col).Read(context.Background())
	if err != nil {
		return fileError(f.file, row, name, "row group %d is corrupt or truncated: %v", rg, err)
	}
	defer chunked.Release()
	if int64(chunked.Len()) != n {
		return fileError(f.file, row, name, "row group %d has %d values, its metadata says %d rows", rg, chunked.Len(), n)
	}
	at := row
	for _, chunk := range chunked.Chunks() {
		if err := add(chunk, at); err != nil {
			return err
		}
		at += int64(chunk.Len())
	}
	return nil
}

func readPath(path, format string, spec readSpec, rows *Rows) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fileError(path, -1, "", "%v", err)
	}
	return readBytes(path, data, format, spec, rows)
}

// ExpandPath lists the files a path names: a glob (sorted matches), a directory (its *.arrow and
// *.parquet files, sorted, as a Hugging Face save_to_disk directory holds them) or a single file.
func ExpandPath(path string) ([]string, error) {
	if path == "" {
		return nil, fmt.Errorf("data path is empty")
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		var files []string
		for _, pattern := range []string{"*.arrow", "*.parquet"} {
			m, _ := filepath.Glob(filepath.Join(path, pattern))
			files = append(files, m...)
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("directory %s holds no *.arrow or *.parquet files", path)
		}
		return files, nil
	}
	if !strings.ContainsAny(path, "*?[") {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("data path: %w", err)
		}
		return []string{path}, nil
	}
	files, err := filepath.Glob(path)
	if err != nil {
		return nil, fmt.Errorf("data path %q: %v", path, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("data path %q matches no files", path)
	}
	sort.Strings(files)
	return files, nil
}

// boundedAllocator refuses single allocations above a limit, and all allocations together above a
// budget: a corrupt length or count field (a page claiming billions of values, say) must become an
// error, not an attempt to allocate terabytes, which would end the process.
type boundedAllocator struct {
	memory.GoAllocator
	limit  int
	budget int64
	used   atomic.Int64
}

// newBoundedAllocator sizes the limits by the file: decompressed data may be far larger than the
// file, but not unboundedly.
func newBoundedAllocator(fileSize int) *boundedAllocator {
	return &boundedAllocator{limit: 16<<20 + 256*fileSize, budget: 1<<30 + 256*int64(fileSize)}
}

type allocTooLarge struct {
	size  int
	limit int64
	total bool
}

func (e allocTooLarge) String() string {
	if e.total {
		return fmt.Sprintf("decoding needs more than %d bytes in all, too many for this file's size (a corrupt count?)", e.limit)
	}
	return fmt.Sprintf("a length field asks for %d bytes, more than %d allowed for this file", e.size, e.limit)
}

func (a *boundedAllocator) check(size int) {
	if size < 0 || size > a.limit {
		panic(allocTooLarge{size: size, limit: int64(a.limit)})
	}
	if a.used.Add(int64(size)) > a.budget {
		panic(allocTooLarge{size: size, limit: a.budget, total: true})
	}
}

func (a *boundedAllocator) Allocate(size int) []byte {
	a.check(size)
	return a.GoAllocator.Allocate(size)
}

func (a *boundedAllocator) Reallocate(size int, b []byte) []byte {
	a.check(size)
	return a.GoAllocator.Reallocate(size, b)
}

// ipcLimits bound what an IPC message may claim: neither its metadata nor its body can be larger
// than the file holding it.
func ipcLimits(alloc memory.Allocator, fileSize int) []ipc.Option {
	return []ipc.Option{ipc.WithAllocator(alloc), ipc.WithMetadataSizeLimit(int64(fileSize)), ipc.WithBodySizeLimit(int64(fileSize))}
}
