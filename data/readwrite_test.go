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

// WriteTask streams what GenerateRows draws; a partial last batch writes only its first rows.
func TestWriteTask(t *testing.T) {
	for _, task := range []Task{Passkey{SeqLen: 400, RandomDepth: true}, Needle{SeqLen: 500, Keys: 2, Values: 2}, Copy{Vocab: 20, SeqLen: 30, Length: 10}, SelectiveCopy{Vocab: 20, SeqLen: 30, Tokens: 6}} {
		src, err := NewTaskSource(task, 4, 11, 2)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := GenerateRows(src, 10)
		path := filepath.Join(t.TempDir(), "task.parquet")
		if err := WriteTask(path, OutParquet, src, 10); err != nil {
			t.Fatal(err)
		}
		got, err := ReadRows(FileConfig{Path: path}, ByteVocab)
		if err != nil {
			t.Fatal(err)
		}
		if err := want.Equal(got); err != nil || got.Len() != 10 {
			t.Fatalf("%s: %d rows read back: %v", task, got.Len(), err)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o644 {
			t.Fatalf("%s: mode %v, want 0644", path, info.Mode().Perm())
		}
	}
}
