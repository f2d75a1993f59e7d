package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	flatbuffers "github.com/google/flatbuffers/go"
)

// column is one column of a hand-made file: a name, a type and its rows as JSON.
type column struct {
	name string
	typ  arrow.DataType
	json string
}

var (
	listI32    = arrow.ListOf(arrow.PrimitiveTypes.Int32)
	listI64    = arrow.LargeListOf(arrow.PrimitiveTypes.Int64)
	listF64    = arrow.ListOf(arrow.PrimitiveTypes.Float64)
	stringType = arrow.BinaryTypes.String
)

// encodeColumns writes the columns as an Arrow stream ("arrow-stream"), Arrow file ("arrow") or
// Parquet ("parquet"), in record batches / row groups of at most perBatch rows.
func encodeColumns(t testing.TB, format string, perBatch int, cols ...column) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := make([]arrow.Field, len(cols))
	arrays := make([]arrow.Array, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
		arr, _, err := array.FromJSON(mem, c.typ, strings.NewReader(c.json))
		if err != nil {
			t.Fatalf("column %s: %v", c.name, err)
		}
		arrays[i] = arr
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, arrays, int64(arrays[0].Len()))
	var buf bytes.Buffer
	var write func(arrow.RecordBatch) error
	var closeW func() error
	switch format {
	case OutArrowStream:
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		write, closeW = w.Write, w.Close
	case OutArrowFile:
		w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		write, closeW = w.Write, w.Close
	case OutParquet:
		w, err := pqarrow.NewFileWriter(schema, &buf, nil, pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		write, closeW = w.Write, w.Close
	}
	for a := int64(0); a < rec.NumRows(); a += int64(perBatch) {
		part := rec.NewSlice(a, min(a+int64(perBatch), rec.NumRows()))
		if err := write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := closeW(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const goodIDs = `[[1,2,3],[4,5],[6],[7,8,9,10],[11,12]]`

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := func(format string) []byte {
		return encodeColumns(t, format, 2, column{"input_ids", listI32, goodIDs}, column{"labels", listI32, `[[2,3,-100],[5,-100],[-100],[8,9,10,-100],[12,-100]]`})
	}
	truncated := func(format string) []byte { b := good(format); return b[:len(b)*2/3] }
	corrupt := func(format string, from, to int) []byte {
		b := bytes.Clone(good(format))
		for i := from; i < to && i < len(b); i++ {
			b[i] = 0xff
		}
		return b
	}
	cases := []struct {
		name, format string
		data         []byte
		cfg          FileConfig
		want         []string // substrings of the error besides the file name
	}{
		{"missing column", OutArrowStream, good(OutArrowStream), FileConfig{IDsColumn: "tokens"},
			[]string{"row 0", `column "tokens"`, "no such column", `"input_ids"`}},
		{"missing labels column", OutParquet, good(OutParquet), FileConfig{LabelsColumn: "targets"},
			[]string{"row 0", `column "targets"`, "no such column"}},
		{"wrong type float list", OutArrowFile, encodeColumns(t, OutArrowFile, 8, column{"input_ids", listF64, `[[1.5]]`}), FileConfig{},
			[]string{"row 0", `column "input_ids"`, "list<item: float64", "want list"}},
		{"wrong type parquet int64 scalar", OutParquet, encodeColumns(t, OutParquet, 8, column{"input_ids", arrow.PrimitiveTypes.Int64, `[1,2]`}), FileConfig{},
			[]string{"row 0", `column "input_ids"`, "type int64"}},
		{"text column is a list", OutArrowStream, good(OutArrowStream), FileConfig{TextColumn: "input_ids"},
			[]string{"row 0", `column "input_ids"`, "want string"}},
		{"vocab too small for text", OutArrowStream, encodeColumns(t, OutArrowStream, 9, column{"text", arrow.BinaryTypes.String, `["a"]`}), FileConfig{TextColumn: "text"},
			[]string{"row 0", `column "text"`, "vocabulary of at least 260"}},
		{"empty file", OutParquet, nil, FileConfig{}, []string{"row 0", "empty file"}},
		{"truncated stream", OutArrowStream, truncated(OutArrowStream), FileConfig{}, []string{"row ", `column "input_ids"`, "truncated"}},
		{"truncated file", OutArrowFile, truncated(OutArrowFile), FileConfig{}, []string{"row 0", "truncated"}},
		{"truncated parquet", OutParquet, truncated(OutParquet), FileConfig{}, []string{"row 0", "truncated"}},
		{"corrupt parquet pages", OutParquet, corrupt(OutParquet, 4, 40), FileConfig{}, []string{"row 0", `column "input_ids"`, "row group 0 is corrupt"}},
		{"corrupt stream offsets", OutArrowStream, corrupt(OutArrowStream, 420, 440), FileConfig{}, []string{"row ", `column "input_ids"`}},
		{"parquet asked, arrow given", OutArrowFile, good(OutArrowFile), FileConfig{Format: FormatParquet}, []string{"row 0", "not a Parquet file"}},
		{"not arrow at all", OutArrowStream, []byte("input_ids,labels\n1,2\n"), FileConfig{}, []string{"row 0", "Arrow IPC"}},
		{"ragged row (batch 2)", OutArrowStream, encodeColumns(t, OutArrowStream, 2, column{"input_ids", listI32, goodIDs},
			column{"labels", listI32, `[[2,3,-100],[5,-100],[-100],[8,9,-100],[12,-100]]`}), FileConfig{},
			[]string{"row 3", `column "labels"`, "3 labels for 4 input_ids", "ragged"}},
		{"ragged row parquet", OutParquet, encodeColumns(t, OutParquet, 2, column{"input_ids", listI32, goodIDs},
			column{"labels", listI32, `[[2,3,-100],[5,-100],[-100],[8,9,10,-100],[12]]`}), FileConfig{},
			[]string{"row 4", `column "labels"`, "1 labels for 2 input_ids"}},
		{"token id >= vocab", OutParquet, encodeColumns(t, OutParquet, 2, column{"input_ids", listI64, `[[1],[2],[3],[4,64]]`}), FileConfig{},
			[]string{"row 3", `column "input_ids"`, "position 1", "token id 64", "[0, 64)"}},
		{"negative token id", OutArrowFile, encodeColumns(t, OutArrowFile, 3, column{"input_ids", listI32, `[[1],[2],[3],[-5]]`}), FileConfig{},
			[]string{"row 3", `column "input_ids"`, "position 0", "token id -5"}},
		{"label >= vocab", OutArrowStream, encodeColumns(t, OutArrowStream, 9, column{"input_ids", listI32, `[[1,2],[3,4]]`}, column{"labels", listI32, `[[2,-100],[-100,70]]`}), FileConfig{},
			[]string{"row 1", `column "labels"`, "position 1", "label 70"}},
		{"null row", OutParquet, encodeColumns(t, OutParquet, 9, column{"input_ids", listI32, `[[1,2],null]`}), FileConfig{},
			[]string{"row 1", `column "input_ids"`, "null list"}},
		{"null token", OutArrowStream, encodeColumns(t, OutArrowStream, 9, column{"input_ids", listI32, `[[1,2],[3,null]]`}), FileConfig{},
			[]string{"row 1", `column "input_ids"`, "position 1: null token"}},
		{"null text", OutArrowStream, encodeColumns(t, OutArrowStream, 9, column{"text", arrow.BinaryTypes.String, `["a", null]`}), FileConfig{TextColumn: "text"},
			[]string{"row 1", `column "text"`, "null text"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+"."+tc.format)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			tc.cfg.Path = path
			vocab := 64
			if tc.cfg.TextColumn != "" && !strings.Contains(tc.name, "vocab") {
				vocab = ByteVocab
			}
			_, err := ReadRows(tc.cfg, vocab)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range append([]string{"file " + path}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A valid file with no rows is not an error by itself, but a dataset with no rows is.
func TestNoRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.parquet")
	if err := WriteFile(path, OutParquet, NewRows()); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRows(FileConfig{Path: path}, 64); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Fatalf("got %v, want a no-rows error", err)
	}
	if _, err := ReadRows(FileConfig{Path: filepath.Join(t.TempDir(), "*.arrow")}, 64); err == nil || !strings.Contains(err.Error(), "matches no files") {
		t.Fatalf("got %v, want a matches-no-files error", err)
	}
}

// Several files (a glob) are read in name order, and an error in the second names that file and its
// own row number.
func TestGlobAndRowNumbers(t *testing.T) {
	dir := t.TempDir()
	a := encodeColumns(t, OutArrowStream, 2, column{"input_ids", listI32, `[[1,2],[3]]`})
	b := encodeColumns(t, OutParquet, 2, column{"input_ids", listI32, `[[4],[5,6],[7]]`})
	bad := encodeColumns(t, OutArrowFile, 1, column{"input_ids", listI32, `[[1],[2],[99]]`})
	for name, data := range map[string][]byte{"data-00000-of-00002.arrow": a, "data-00001-of-00002.parquet": b} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadRows(FileConfig{Path: filepath.Join(dir, "data-*")}, 64)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Len() != 5 || rows.Tokens() != 7 || rows.IDs[6] != 7 {
		t.Fatalf("glob read %d rows, %d tokens, last %d; want 5, 7, 7", rows.Len(), rows.Tokens(), rows.IDs[6])
	}
	dirRows, err := ReadRows(FileConfig{Path: dir}, 64)
	if err != nil || dirRows.Equal(rows) != nil {
		t.Fatalf("reading the directory: %v", err)
	}
	badPath := filepath.Join(dir, "data-00002-of-00002.arrow")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadRows(FileConfig{Path: filepath.Join(dir, "data-*")}, 64)
	if err == nil || !strings.Contains(err.Error(), "file "+badPath+": row 2, column \"input_ids\": position 0: token id 99") {
		t.Fatalf("got %v, want the third file's row 2 named", err)
	}
}

// A stream whose first word claims a 1.4 GB message must fail fast, without allocating it
// (arrow-go's ipc.NewReader ignores its size limits and allocates; byteMessages checks every length).
func TestGarbageLengthDoesNotAllocate(t *testing.T) {
	data := append([]byte("AROW1\x00\x00\xff"), bytes.Repeat([]byte{0}, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := readBytes("garbage.arrow", data, FormatArrow, readSpec{IDs: "input_ids", Vocab: 64}, NewRows())
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "message metadata of 1464816193 bytes at byte 4 does not fit") {
		t.Fatalf("got %v, want the length refused", err)
	}
	if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 16 {
		t.Fatalf("reading a 1 KB file allocated %d MiB", mib)
	}
}

// A schema whose field count is corrupt must be refused before arrow-go allocates by it (it would
// ask for ~200 GB and end the process).
func TestCorruptFieldCount(t *testing.T) {
	rows, _ := mqarRows(t, 2)
	var buf bytes.Buffer
	if err := WriteRows(&buf, OutArrowStream, rows); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	n := int(binary.LittleEndian.Uint32(data[4:])) // continuation, length, then the schema message
	meta := data[8 : 8+n]
	msg := &flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	var schema flatbuffers.Table
	msg.Union(&schema, flatbuffers.UOffsetT(msg.Offset(vtMessageHeader)))
	fields := schema.Vector(flatbuffers.UOffsetT(schema.Offset(vtSchemaFields)))
	if got := binary.LittleEndian.Uint32(meta[fields-4:]); got != 2 {
		t.Fatalf("found a fields vector of length %d, want the 2 columns", got)
	}
	binary.LittleEndian.PutUint32(meta[fields-4:], 0x7fffffff)
	err := readBytes("count.arrow", data, FormatArrow, readSpec{IDs: "input_ids", Vocab: 64}, NewRows())
	if err == nil || !strings.Contains(err.Error(), "the schema's fields claims 2147483647 entries") {
		t.Fatalf("got %v, want the field count refused", err)
	}
}
