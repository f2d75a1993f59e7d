package data

import (
	"testing"
)

func TestMQARSemantics(t *testing.T) {
	task := MQAR{Vocab: 64, SeqLen: 64, NumPairs: 8, PowerA: 0.01}
	src, err := NewMQARSource(task, 16, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := src.BatchAt(3)
	again, _ := src.BatchAt(3)
	other, _ := src.BatchAt(4)
	same, differ := true, false
	for i := range b.InputIDs {
		same = same && b.InputIDs[i] == again.InputIDs[i]
		differ = differ || b.InputIDs[i] != other.InputIDs[i]
	}
	if !same || !differ {
		t.Fatalf("BatchAt must be deterministic per index and differ across indices (same=%v differ=%v)", same, differ)
	}
	for r := 0; r < b.Size; r++ {
		ids, labels := b.Row(r)
		pairs := map[int32]int32{}
		for i := 0; i < task.NumPairs; i++ {
			k, v := ids[2*i], ids[2*i+1]
			if k < 1 || k >= 32 || v < 32 || v >= 64 {
				t.Fatalf("row %d pair %d = (%d, %d): keys must be in [1,32), values in [32,64)", r, i, k, v)
			}
			if _, dup := pairs[k]; dup {
				t.Fatalf("row %d: key %d repeated", r, k)
			}
			pairs[k] = v
		}
		queries := 0
		for p := range ids {
			if labels[p] == Ignore {
				continue
			}
			queries++
			if p < 2*task.NumPairs || (p-2*task.NumPairs)%2 != 0 {
				t.Fatalf("row %d: query at %d, want an even offset past the context", r, p)
			}
			if pairs[ids[p]] != labels[p] {
				t.Fatalf("row %d pos %d: key %d labelled %d, want %d", r, p, ids[p], labels[p], pairs[ids[p]])
			}
		}
		if queries != task.NumPairs {
			t.Fatalf("row %d: %d queries, want %d", r, queries, task.NumPairs)
		}
	}
}

func TestMQARValidate(t *testing.T) {
	for _, bad := range []MQAR{
		{Vocab: 64, SeqLen: 20, NumPairs: 8, PowerA: 0.01},
		{Vocab: 8, SeqLen: 64, NumPairs: 8, PowerA: 0.01},
		{Vocab: 64, SeqLen: 64, NumPairs: 0, PowerA: 0.01},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

// Short gaps are likelier: with a = 0.01 the mean query gap is well below the uniform mean.
func TestMQARGapsFavourShort(t *testing.T) {
	task := MQAR{Vocab: 256, SeqLen: 512, NumPairs: 4, PowerA: 0.01}
	src, _ := NewMQARSource(task, 64, 2, 0)
	b, _ := src.BatchAt(0)
	sum, n := 0, 0
	for i, l := range b.Labels {
		if l != Ignore {
			sum += (i%task.SeqLen - 8) / 2
			n++
		}
	}
	space := (512 - 8) / 2
	if mean := float64(sum) / float64(n); mean > float64(space)/2*0.8 {
		t.Errorf("mean gap %.1f, want well below the uniform mean %.1f", mean, float64(space)/2)
	}
}
