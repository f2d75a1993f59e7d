package data

import (
	"path/filepath"
	"slices"
	"testing"
)

// seqRows holds rows 0..n-1 where row r is r+1 tokens 100*r+0, 100*r+1, ... with next-token labels.
func seqRows(n int) *Rows {
	rows := NewRows()
	for r := 0; r < n; r++ {
		ids := make([]int32, r+1)
		for t := range ids {
			ids[t] = int32(100*r + t)
		}
		rows.Append(ids, appendNextTokenLabels(nil, ids))
	}
	return rows
}

func TestPadMode(t *testing.T) {
	// Rows of 1, 2, 3, 4, 5 tokens with seq_len 3: examples are [0] [100 101] [200 201 202]
	// [300 301 302] [303] [400 401 402] [403 404]: long rows are cut into windows, nothing dropped.
	src, err := NewFileSource(FileConfig{Path: "mem", Prefetch: -1}, seqRows(5), 2, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if src.Examples() != 7 {
		t.Fatalf("%d examples, want 7", src.Examples())
	}
	b, _ := src.BatchAt(1) // examples 2 and 3
	wantIDs := []int32{200, 201, 202, 300, 301, 302}
	wantLabels := []int32{201, 202, Ignore, 301, 302, 303} // 302's target is 303, in the next window
	if !slices.Equal(b.InputIDs, wantIDs) || !slices.Equal(b.Labels, wantLabels) {
		t.Fatalf("batch 1 = %v / %v, want %v / %v", b.InputIDs, b.Labels, wantIDs, wantLabels)
	}
	b, _ = src.BatchAt(3) // example 6 ([403 404], padded) then example 0 of epoch 1 ([0], padded)
	wantIDs = []int32{403, 404, 0, 0, 0, 0}
	wantLabels = []int32{404, Ignore, Ignore, Ignore, Ignore, Ignore}
	if !slices.Equal(b.InputIDs, wantIDs) || !slices.Equal(b.Labels, wantLabels) {
		t.Fatalf("batch 3 = %v / %v, want %v / %v", b.InputIDs, b.Labels, wantIDs, wantLabels)
	}
	if src.Epoch(3) != 0 || src.Epoch(4) != 1 || src.LabelSlots() != 3 {
		t.Fatalf("epochs of batches 3, 4 = %d, %d; label slots %d; want 0, 1, 3 ([300 301 302] has 3 targets)", src.Epoch(3), src.Epoch(4), src.LabelSlots())
	}
}

func TestPackMode(t *testing.T) {
	// The stream 0 | 100 101 | 200 201 202 | 300 ... cut every 4 tokens; each row's last token keeps
	// its Ignore label, so no loss crosses documents.
	src, err := NewFileSource(FileConfig{Path: "mem", Mode: ModePack, Prefetch: -1}, seqRows(4), 1, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if src.Examples() != 3 { // 10 tokens in windows of 4: 4 + 4 + 2
		t.Fatalf("%d examples, want 3", src.Examples())
	}
	want := [][2][]int32{
		{{0, 100, 101, 200}, {Ignore, 101, Ignore, 201}},
		{{201, 202, 300, 301}, {202, Ignore, 301, 302}},
		{{302, 303, 0, 0}, {303, Ignore, Ignore, Ignore}},
	}
	for i, w := range want {
		b, _ := src.BatchAt(int64(i))
		if !slices.Equal(b.InputIDs, w[0]) || !slices.Equal(b.Labels, w[1]) {
			t.Fatalf("batch %d = %v / %v, want %v / %v", i, b.InputIDs, b.Labels, w[0], w[1])
		}
	}
}

func TestShuffleEpochs(t *testing.T) {
	rows := seqRows(50) // 50 rows of up to 50 tokens, seq_len 64: one example per row
	src, err := NewFileSource(FileConfig{Path: "mem", Shuffle: true}, rows, 7, 64, 42)
	if err != nil {
		t.Fatal(err)
	}
	// 50 examples in batches of 7: batch 7 holds examples 49 (epoch 0) and 0..5 (epoch 1).
	firstOfEpoch := func(e int) []int32 {
		var order []int32
		for g := e * 50; g < (e+1)*50; g++ {
			b, err := src.BatchAt(int64(g / 7))
			if err != nil {
				t.Fatal(err)
			}
			ids, _ := b.Row(g % 7)
			order = append(order, ids[0]/100) // the row number
		}
		return order
	}
	e0, e1 := firstOfEpoch(0), firstOfEpoch(1)
	for e, order := range [][]int32{e0, e1} {
		sorted := slices.Clone(order)
		slices.Sort(sorted)
		for i, r := range sorted {
			if r != int32(i) {
				t.Fatalf("epoch %d is not a permutation of the 50 rows: %v", e, order)
			}
		}
	}
	if slices.Equal(e0, e1) {
		t.Fatal("epochs 0 and 1 have the same order")
	}
	sorted := slices.Clone(e0)
	slices.Sort(sorted)
	if slices.Equal(e0, sorted) {
		t.Fatal("epoch 0 is in file order although shuffle is on")
	}
	// The same seed gives the same order; another seed another one.
	again, _ := NewFileSource(FileConfig{Path: "mem", Shuffle: true}, rows, 7, 64, 42)
	other, _ := NewFileSource(FileConfig{Path: "mem", Shuffle: true}, rows, 7, 64, 43)
	a, _ := src.BatchAt(9)
	b, _ := again.BatchAt(9)
	c, _ := other.BatchAt(9)
	if !slices.Equal(a.InputIDs, b.InputIDs) || slices.Equal(a.InputIDs, c.InputIDs) {
		t.Fatal("shuffle must depend on the seed and only on it")
	}
}

// Prefetching must not change any batch, whatever the access pattern.
func TestPrefetchSameBatches(t *testing.T) {
	rows := seqRows(40)
	plain, _ := NewFileSource(FileConfig{Path: "mem", Shuffle: true, Prefetch: -1}, rows, 3, 16, 5)
	fetched, _ := NewFileSource(FileConfig{Path: "mem", Shuffle: true, Prefetch: 4}, rows, 3, 16, 5)
	gen, _ := NewMQARSource(MQAR{Vocab: 32, SeqLen: 32, NumPairs: 4, PowerA: 0.1}, 4, 3, 0)
	wrapped := Prefetch(gen, 3)
	for _, index := range []int64{0, 1, 2, 3, 10, 11, 5, 5, 6, 100, 99, 101, 102, 0} {
		for _, pair := range [][2]Source{{plain, fetched}, {gen, wrapped}} {
			a, err1 := pair[0].BatchAt(index)
			b, err2 := pair[1].BatchAt(index)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !slices.Equal(a.InputIDs, b.InputIDs) || !slices.Equal(a.Labels, b.Labels) {
				t.Fatalf("%s: batch %d differs with prefetching", pair[0].Name(), index)
			}
		}
	}
	if _, err := fetched.BatchAt(-1); err == nil {
		t.Fatal("batch -1: want an error")
	}
}

// A file written from a generator, read back in pad mode without shuffling and with the same batch
// size, replays the generator's batches exactly: training from the file sees what the generator gives.
func TestFileReplaysGenerator(t *testing.T) {
	for _, format := range []string{OutParquet, OutArrowStream} {
		rows, gen := mqarRows(t, 40) // 5 batches of 8
		path := filepath.Join(t.TempDir(), "mqar."+format)
		if err := WriteFile(path, format, rows); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFiles(FileConfig{Path: path}, 8, 48, 64, 0)
		if err != nil {
			t.Fatal(err)
		}
		if src.LabelSlots() != 4 {
			t.Fatalf("label slots %d, want the 4 MQAR queries", src.LabelSlots())
		}
		for i := int64(0); i < 5; i++ {
			a, _ := gen.BatchAt(i)
			b, err := src.BatchAt(i)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.InputIDs, b.InputIDs) || !slices.Equal(a.Labels, b.Labels) {
				t.Fatalf("%s: batch %d differs from the generator's", format, i)
			}
		}
		if fs := src.(*FileSource); fs.Epoch(5) != 1 {
			t.Fatalf("batch 5 is in epoch %d, want 1", fs.Epoch(5))
		}
	}
}
