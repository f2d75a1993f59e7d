package eval

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
)

// tinyByteModel is tinyModel over the byte vocabulary, for passkey and needle rows.
func tinyByteModel(t *testing.T) *model.Model {
	t.Helper()
	cfg := model.DefaultConfig()
	cfg.Vocab, cfg.DModel, cfg.MLPHidden, cfg.DType = data.ByteVocab, 16, 32, "float64"
	cfg.Layers = model.LayerTypes("swa", "swa")
	cfg.SlidingWindow.Heads, cfg.SlidingWindow.Window, cfg.SlidingWindow.ShortConv = 2, 48, 3
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// passkeyRows are n generated test rows of a passkey task at a length and depth.
func passkeyRows(t *testing.T, length int, depth float64, n int, seed uint64) *data.Rows {
	t.Helper()
	src, err := data.NewTaskSource(data.Passkey{SeqLen: length, Depth: depth}, n, seed, SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.BatchAt(0)
	if err != nil {
		t.Fatal(err)
	}
	rows := data.NewRows()
	rows.AppendBatch(b)
	return rows
}

// writeWithDepth writes rows and a float64 depth column to an Arrow IPC file.
func writeWithDepth(t *testing.T, path string, rows *data.Rows, depths []float64) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "input_ids", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "labels", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: DepthColumn, Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for r := 0; r < rows.Len(); r++ {
		ids, labels := rows.Row(r)
		for col, values := range [][]int32{ids, labels} {
			lb := b.Field(col).(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Int32Builder).AppendValues(values, nil)
		}
		b.Field(2).(*array.Float64Builder).Append(depths[r])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Passkey rows read from two files (one with a depth column, one without) are scored per (length,
// depth) exactly as the same rows generated in memory: exact match, token accuracy and bits per token.
// The file without a depth column places its rows where their key first appears.
func TestPasskeyFromFilesEqualsGenerated(t *testing.T) {
	m := tinyByteModel(t)
	s, err := NewStreamer(m, m.Config.Vocab, newStore(2), lt.Backend(), 512)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	withDepth := data.NewRows()
	var depths []float64
	for _, d := range []float64{0, 1} {
		rows := passkeyRows(t, 256, d, 2, 5)
		for r := 0; r < rows.Len(); r++ {
			withDepth.Append(rows.Row(r))
			depths = append(depths, d)
		}
	}
	writeWithDepth(t, filepath.Join(dir, "depth.arrow"), withDepth, depths)
	if err := data.WriteFile(filepath.Join(dir, "plain.parquet"), data.OutParquet, passkeyRows(t, 320, 0.5, 2, 5)); err != nil {
		t.Fatal(err)
	}
	task, err := NewTask("passkey", Options{Vocab: m.Config.Vocab,
		Files: []string{filepath.Join(dir, "depth.arrow"), filepath.Join(dir, "plain.parquet")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Run(s, "tiny", task, Grid{Lengths: []int{999}, Samples: 8, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := data.Passkey{SeqLen: 320}.NeedleAt(0.5) + len("The pass key is ")
	plainAt := math.Round(10*float64(key)/320) / 10
	want := map[Point]Cell{}
	for _, p := range []Point{{256, 0}, {256, 1}, {320, 0.5}} {
		cells, err := Run(s, "tiny", Passkey{}, Grid{Lengths: []int{p.Length}, Axis: []float64{p.At}, Samples: 2, Seed: 5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Length == 320 {
			p.At = plainAt
		}
		want[p] = cells[0]
	}
	if len(got) != len(want) {
		t.Fatalf("file cells %+v: want one per (length, depth) of %v", got, want)
	}
	for _, c := range got {
		w, ok := want[Point{c.Length, c.At}]
		if !ok || c.Rows != 2 || c.Accuracy != w.Accuracy || c.TokenAccuracy != w.TokenAccuracy ||
			math.Abs(c.BitsPerToken-w.BitsPerToken) > 1e-12 {
			t.Errorf("file cell (%d, depth %g): %+v; generated: %+v", c.Length, c.At, c, w)
		}
	}
}

// A depth outside [0, 1] in a file's depth column is an error naming the file, row and column.
func TestDepthColumnOutOfRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.arrow")
	writeWithDepth(t, path, passkeyRows(t, 256, 0, 1, 1), []float64{1.5})
	_, err := NewTask("passkey", Options{Vocab: data.ByteVocab, Files: []string{path}})
	if err == nil || !contains(err.Error(), "row 0", `column "depth"`, "1.5") {
		t.Fatalf("got %v, want an error naming row 0, the depth column and 1.5", err)
	}
}

// Full attention's KV cache holds what the stream needs, not max_context: a 64-token input gets a
// cache of 64 positions under a max_context of 4,096.
func TestKVCacheSizedToInput(t *testing.T) {
	m := tinyModel(t, "attention")
	s, err := NewStreamer(m, m.Config.Vocab, newStore(2), lt.Backend(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	state, err := s.initialState(2, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer finalize(state)
	biggest := 0
	for _, st := range state {
		biggest = max(biggest, st.Shape().Size())
	}
	// A layer's cache: [batch 2, 64 positions, 2 heads, 8 per head] = 2,048 values.
	if want := 2 * 64 * 16; biggest > want {
		t.Fatalf("largest state tensor holds %d values, want at most %d (a cache of 64 positions, not %d)", biggest, want, streamLen)
	}
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
