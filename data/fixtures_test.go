package data

import (
	"fmt"
	"strings"
	"testing"
)

// The fixtures in testdata/ were written by the Arrow JavaScript package and by DuckDB
// (testdata/make_fixtures.cjs); these tests recompute their rows from the same formulas.

func TestHFStreamFixture(t *testing.T) {
	want := NewRows()
	for i := 0; i < 10; i++ {
		ids := Encode(fmt.Sprintf("Row %d: naïve café №%d", i, i*i))
		want.Append(ids, appendNextTokenLabels(nil, ids))
	}
	// "Row 0: naïve café №0" is 20 characters but 24 UTF-8 bytes (ï, é: 2 bytes, №: 3), then EOS.
	if ids, _ := want.Row(0); len(ids) != 25 || ids[24] != EOS {
		t.Fatalf("row 0 encodes to %d ids, want 24 bytes + EOS", len(ids))
	}
	// The same rows three ways: the text column through the byte tokenizer, input_ids with
	// next-token labels, and input_ids with the HF-convention labels shifted.
	for name, cfg := range map[string]FileConfig{
		"text":       {TextColumn: "text"},
		"next-token": {LabelsColumn: "none"},
		"shifted":    {ShiftLabels: true},
	} {
		cfg.Path = "testdata/hf_stream.arrow"
		rows, err := ReadRows(cfg, ByteVocab)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := want.Equal(rows); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Read unshifted, the HF labels column (a copy of input_ids) would teach the identity: refused.
	_, err := ReadRows(FileConfig{Path: "testdata/hf_stream.arrow"}, ByteVocab)
	if err == nil || !strings.Contains(err.Error(), "shift_labels") || !strings.Contains(err.Error(), "hf_stream.arrow") {
		t.Fatalf("unshifted HF labels: got %v, want an error naming the file and shift_labels", err)
	}
}

func TestJSArrowFileFixture(t *testing.T) {
	want := NewRows()
	for i := 0; i < 7; i++ {
		var ids, labels []int32
		for j := 0; j <= i; j++ {
			ids = append(ids, int32(i*11+j))
		}
		for tt := range ids {
			l := int32(Ignore)
			if tt%2 == 1 {
				l = ids[tt] * 3 % 97
			}
			labels = append(labels, l)
		}
		want.Append(ids, labels)
	}
	got, err := ReadRows(FileConfig{Path: "testdata/js_file.arrow", Format: FormatArrow}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := want.Equal(got); err != nil {
		t.Fatalf("large_list<int64> ids and labels: %v", err)
	}
	fixed, err := ReadRows(FileConfig{Path: "testdata/js_file.arrow", IDsColumn: "fixed_ids", LabelsColumn: "fixed_ids", ShiftLabels: true}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		ids, labels := fixed.Row(i)
		wantIDs := []int32{int32(i), int32(i + 1), int32(i + 2)}
		wantLabels := []int32{int32(i + 1), int32(i + 2), Ignore}
		if fmt.Sprint(ids, labels) != fmt.Sprint(wantIDs, wantLabels) {
			t.Fatalf("fixed_size_list row %d: got %v %v, want %v %v", i, ids, labels, wantIDs, wantLabels)
		}
	}
	text, err := ReadRows(FileConfig{Path: "testdata/js_file.arrow", TextColumn: "text"}, ByteVocab)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := text.Row(6); Decode(ids) != "doc 6<eos>" {
		t.Fatalf("large_string row 6 decodes to %q", Decode(ids))
	}
}

func TestDuckDBParquetFixture(t *testing.T) {
	const rows = 5000
	want32, want64, wantText := NewRows(), NewRows(), NewRows()
	for i := 0; i < rows; i++ {
		var a, la, b []int32
		for j := 0; j < i%4+1; j++ {
			a = append(a, int32(i*10+j))
			l := int32(Ignore)
			if j%2 == 1 {
				l = int32(500 + i + j)
			}
			la = append(la, l)
		}
		for j := 0; j < i%3+2; j++ {
			b = append(b, int32(i+100*j))
		}
		want32.Append(a, la)
		want64.Append(b, appendNextTokenLabels(nil, b))
		text := Encode(fmt.Sprintf("dück %d", i))
		wantText.Append(text, appendNextTokenLabels(nil, text))
	}
	for _, tc := range []struct {
		cfg  FileConfig
		want *Rows
	}{
		{FileConfig{IDsColumn: "ids32"}, want32}, // "labels" is picked up by default
		{FileConfig{IDsColumn: "ids64", LabelsColumn: "", Format: FormatParquet}, nil},
		{FileConfig{TextColumn: "text"}, wantText},
	} {
		tc.cfg.Path = "testdata/duck.parquet"
		got, err := ReadRows(tc.cfg, 50000)
		if tc.want == nil {
			// ids64 has other row lengths than the labels column, which the reader must refuse.
			if err == nil {
				t.Fatalf("ids64 with the default labels column: want a ragged-row error")
			}
			tc.cfg.LabelsColumn = "ids64"
			tc.cfg.ShiftLabels = true
			got, err = ReadRows(tc.cfg, 50000)
			tc.want = want64
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		if err := tc.want.Equal(got); err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}
