package data

import (
	"os"
	"path/filepath"
	"testing"
)

// mqarRows draws rows from the MQAR generator: fixed length, labels only at the queries.
func mqarRows(t testing.TB, n int) (*Rows, *GeneratorSource) {
	t.Helper()
	src, err := NewMQARSource(MQAR{Vocab: 64, SeqLen: 48, NumPairs: 4, PowerA: 0.01, RandomFiller: true}, 8, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := GenerateRows(src, n)
	if err != nil {
		t.Fatal(err)
	}
	return rows, src
}

func TestRoundTripAllFormats(t *testing.T) {
	want, _ := mqarRows(t, 37)
	dir := t.TempDir()
	for _, format := range []string{OutArrowFile, OutArrowStream, OutParquet} {
		path := filepath.Join(dir, "rows."+format)
		if err := WriteFile(path, format, want); err != nil {
			t.Fatal(err)
		}
		for _, read := range []string{FormatAuto, map[string]string{OutArrowFile: FormatArrow, OutArrowStream: FormatArrow, OutParquet: FormatParquet}[format]} {
			got, err := ReadRows(FileConfig{Path: path, Format: read}, 64)
			if err != nil {
				t.Fatalf("%s read as %s: %v", format, read, err)
			}
			if err := want.Equal(got); err != nil {
				t.Errorf("%s read as %s: %v", format, read, err)
			}
		}
	}
	// The written rows are not trivially equal: labels are mostly Ignore, a few carry values.
	labelled := 0
	for _, l := range want.Labels {
		if l != Ignore {
			labelled++
		}
	}
	if labelled != 37*4 {
		t.Fatalf("%d labelled positions, want 37 rows x 4 queries", labelled)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d files in the output directory, want 3 (no temporary files left)", len(entries))
	}
}
