package data

import (
	"reflect"
	"strings"
	"testing"
)

// TestPackDocumentStarts: documents of 3, 5, 0 (empty), 2 and 7 tokens packed into windows of 6 mark
// exactly the tokens where a document begins; the window that begins inside the second document has 0
// at its first token, and the last (padded) window, inside the last document, has no start at all.
func TestPackDocumentStarts(t *testing.T) {
	rows := NewRows()
	for _, n := range []int{3, 5, 0, 2, 7} {
		ids := make([]int32, n)
		labels := make([]int32, n)
		rows.Append(ids, labels)
	}
	src, err := NewFileSource(FileConfig{Path: "mem", Mode: ModePack, Prefetch: -1}, rows, 3, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.BatchAt(0)
	if err != nil {
		t.Fatal(err)
	}
	// Stream: documents begin at tokens 0, 3, 8 and 10; windows [0, 6), [6, 12), [12, 17) + 1 pad.
	want := []int32{
		1, 0, 0, 1, 0, 0,
		0, 0, 1, 0, 1, 0,
		0, 0, 0, 0, 0, 0,
	}
	if !reflect.DeepEqual(b.DocStart, want) {
		t.Errorf("DocStart = %v, want %v", b.DocStart, want)
	}
}

// TestDocumentStartsOnlyWhenPackingWithResets: pad mode and pack mode with reset_at_document_start:
// false give no DocStart (today's behaviour); asking for resets in pad mode is an error naming the field.
func TestDocumentStartsOnlyWhenPackingWithResets(t *testing.T) {
	off, on := false, true
	for name, cfg := range map[string]FileConfig{
		"pad":        {Path: "mem", Prefetch: -1},
		"pack_false": {Path: "mem", Mode: ModePack, Prefetch: -1, ResetAtDocumentStart: &off},
	} {
		src, err := NewFileSource(cfg, seqRows(4), 2, 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := src.BatchAt(0); b.DocStart != nil {
			t.Errorf("%s: DocStart = %v, want nil", name, b.DocStart)
		}
	}
	err := FileConfig{Path: "mem", ResetAtDocumentStart: &on}.Validate()
	if err == nil || !strings.Contains(err.Error(), "reset_at_document_start") {
		t.Errorf("reset_at_document_start in pad mode: error %v, want one naming the field", err)
	}
}
