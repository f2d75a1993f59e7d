// Package data holds Engram's data path: fixed-shape token batches, the sources that produce them
// (built-in task generators, Arrow / Parquet files) and the byte tokenizer.
//
// Conventions (DESIGN.md, "Data"): a row is input_ids plus labels of the same length, where labels[t] is
// the token that must follow input_ids[t] and Ignore (-100) marks positions without loss.
//
// Sources are indexed: BatchAt(i) returns the same batch for the same i, whatever was read before. A
// run's data position is therefore just its batch index, which is what makes resume exact.
//
// Files (FileConfig, OpenFiles, ReadRows): Arrow IPC files and streams (Hugging Face datasets'
// data-*.arrow files are streams) and Parquet, one file, a glob or a directory per split. Rows are
// read into memory and checked once (every id < vocab, labels the same length as input_ids, -100
// or < vocab); errors name the file, the row (0-based, counted over the whole file) and the column.
// FileSource cuts the rows into seq_len examples (pad or pack), runs through them epoch after epoch,
// optionally in a per-epoch permutation seeded by (seed, epoch), and prepares the next batches in
// background goroutines (Prefetch) without changing any result.
//
// Byte tokenizer (Encode, Decode): ids 0..255 are bytes, then Pad 256, BOS 257, EOS 258, Sep 259
// (ByteVocab = 260). A text column becomes its UTF-8 bytes followed by EOS.
//
// Tasks (Task, NewTaskSource, GenerateRows, WriteTask): MQAR, Passkey, Needle (RULER's variants),
// Copy and SelectiveCopy, seeded per (seed, split, batch index), in memory or written to Arrow or
// Parquet by Writer / cmd/datagen.
package data

import "fmt"

// Ignore is the label of positions that carry no loss.
const Ignore = -100

// Batch is a fixed-shape batch: Size rows of SeqLen tokens, row-major.
type Batch struct {
	Size, SeqLen int
	InputIDs     []int32 // [Size * SeqLen]
	Labels       []int32 // [Size * SeqLen]; Ignore where no loss
	// DocStart [Size * SeqLen] is 1 at the first token of each document a row packs (pack mode with
	// reset_at_document_start) and 0 elsewhere; nil when every row is one document (or a piece of one).
	DocStart []int32
}

// NewBatch allocates a batch with every label Ignore.
func NewBatch(size, seqLen int) Batch {
	b := Batch{Size: size, SeqLen: seqLen, InputIDs: make([]int32, size*seqLen), Labels: make([]int32, size*seqLen)}
	for i := range b.Labels {
		b.Labels[i] = Ignore
	}
	return b
}

// Row returns the input ids and labels of row r (slices into the batch).
func (b Batch) Row(r int) (ids, labels []int32) {
	return b.InputIDs[r*b.SeqLen : (r+1)*b.SeqLen], b.Labels[r*b.SeqLen : (r+1)*b.SeqLen]
}

// Source produces batches by index.
type Source interface {
	// Name says what the source is, for logs.
	Name() string
	// BatchAt returns batch number index (0, 1, ...); equal indices give equal batches.
	BatchAt(index int64) (Batch, error)
	// LabelSlots is the most labelled positions a row can have: the model computes the output head only
	// at that many gathered positions per row.
	LabelSlots() int
}

// CheckVocab returns an error naming the row and position of the first token id outside [0, vocab).
func (b Batch) CheckVocab(vocab int, where string) error {
	for i, id := range b.InputIDs {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("%s: row %d, position %d: input_ids value %d is outside the vocabulary [0, %d)",
				where, i/b.SeqLen, i%b.SeqLen, id, vocab)
		}
	}
	for i, id := range b.Labels {
		if id != Ignore && (id < 0 || int(id) >= vocab) {
			return fmt.Errorf("%s: row %d, position %d: labels value %d is outside the vocabulary [0, %d) and is not %d",
				where, i/b.SeqLen, i%b.SeqLen, id, vocab, Ignore)
		}
	}
	return nil
}
