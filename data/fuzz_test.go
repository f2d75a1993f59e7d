package data

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Run each for a while with
//
//	go test -run '^$' -fuzz FuzzReadArrow -fuzztime 60s ./data/
//	go test -run '^$' -fuzz FuzzReadParquet -fuzztime 60s ./data/
//
// Any input must give either rows that satisfy the Rows invariants or an error naming the file and a
// row; never a panic, a hang or a runaway allocation.

func fuzzSeeds(f *testing.F, formats ...string) {
	rows, _ := mqarRows(f, 5)
	for _, format := range formats {
		var buf bytes.Buffer
		if err := WriteRows(&buf, format, rows); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(encodeColumns(f, format, 2, column{"input_ids", listI64, `[[1,2,3],[4],[5,6]]`}, column{"text", stringType, `["ab","c",""]`}))
	}
}

func fuzzFixtures(f *testing.F, names ...string) {
	for _, name := range names {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzReadArrow(f *testing.F) {
	fuzzSeeds(f, OutArrowFile, OutArrowStream)
	fuzzFixtures(f, "hf_stream.arrow", "js_file.arrow")
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, FormatArrow) })
}

func FuzzReadParquet(f *testing.F) {
	fuzzSeeds(f, OutParquet)
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, FormatParquet) })
}

// checkRead reads data with a token-id spec and a text spec and checks the outcome.
func checkRead(t *testing.T, data []byte, format string) {
	for _, spec := range []readSpec{
		{IDs: "input_ids", Labels: "labels", Vocab: 64},
		{IDs: "input_ids", Labels: "labels", ShiftLabels: true, Vocab: 1 << 20},
		{Text: "text", Vocab: ByteVocab},
	} {
		rows := NewRows()
		err := readBytes("fuzz.bin", data, format, spec, rows)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "file fuzz.bin: row ") {
				t.Fatalf("error does not name the file and row: %v", err)
			}
			if rows.Len() != 0 || len(rows.IDs) != 0 || len(rows.Labels) != 0 {
				t.Fatalf("failed read left %d rows, %d ids behind", rows.Len(), len(rows.IDs))
			}
			continue
		}
		if len(rows.IDs) != len(rows.Labels) || rows.Offsets[0] != 0 || rows.Tokens() != int64(len(rows.IDs)) {
			t.Fatalf("inconsistent rows: %d ids, %d labels, offsets %v...", len(rows.IDs), len(rows.Labels), rows.Offsets[:1])
		}
		for r := 0; r < rows.Len(); r++ {
			if rows.Offsets[r+1] < rows.Offsets[r] {
				t.Fatalf("row %d: offsets decrease", r)
			}
		}
		for i, id := range rows.IDs {
			if id < 0 || int(id) >= spec.Vocab {
				t.Fatalf("id %d at %d passed the vocab check", id, i)
			}
			if l := rows.Labels[i]; l != Ignore && (l < 0 || int(l) >= spec.Vocab) {
				t.Fatalf("label %d at %d passed the vocab check", l, i)
			}
		}
	}
}
