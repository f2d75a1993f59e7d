package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// Batching modes of a file dataset.
const (
	// ModePad puts each row at the start of its own batch row and pads the rest (labels Ignore).
	// A row longer than seq_len is cut into consecutive seq_len windows, the last one padded, so no
	// token is dropped.
	ModePad = "pad"
	// ModePack concatenates all rows (in file order, nothing inserted between them: a text column's
	// rows already end with EOS) and cuts the stream into seq_len windows; the last window is padded. A
	// row's last token keeps its own label (Ignore by default), so no loss crosses from one document
	// into the next. With reset_at_document_start (the default in this mode) each batch carries
	// DocStart, 1 where a file row (a document) begins inside the window; a window that begins in the
	// middle of a document has 0 at its first token (each batch row starts from the initial state
	// anyway, so 0 and 1 there compute the same).
	ModePack = "pack"
)

// FileConfig is a dataset read from Arrow IPC or Parquet files, as written in an experiment's YAML:
//
//	data:
//	  train: {path: "corpus/train-*.parquet", format: parquet, mode: pack, shuffle: true}
//
// Columns: ids_column (default input_ids) is a list, large_list or fixed_size_list of int32 or int64;
// labels_column (default labels, used when the file has it; "none" ignores it) is the same type and
// row lengths, with labels[t] the target after input_ids[t] and -100 = no loss; without it labels are
// the next token.
// text_column instead names a string column, encoded by the byte tokenizer (bytes, then EOS).
type FileConfig struct {
	Path   string `yaml:"path"`   // a file, a glob, or a directory of *.arrow / *.parquet files
	Format string `yaml:"format"` // auto (default: decided by the content), arrow or parquet
	// Column names; see the type's comment.
	IDsColumn    string `yaml:"ids_column"`
	LabelsColumn string `yaml:"labels_column"`
	TextColumn   string `yaml:"text_column"`
	// ShiftLabels reads labels in the Hugging Face convention, where labels[t] is the target at t
	// (often a copy of input_ids) and the model shifts them.
	ShiftLabels bool   `yaml:"shift_labels"`
	Mode        string `yaml:"mode"`    // pad (default) or pack
	Shuffle     bool   `yaml:"shuffle"` // a new permutation of the examples every epoch
	// Prefetch is how many batches are prepared ahead in background goroutines: 0 = 2, -1 = none.
	Prefetch int `yaml:"prefetch"`
	// ResetAtDocumentStart makes pack mode mark where each document starts (Batch.DocStart), so every
	// mixer restarts its state there and a packed row computes what its documents compute alone. It
	// defaults to true in pack mode (packing is a batching device; the documents are independent) and
	// means nothing in pad mode (one document per row); false keeps the state flowing across documents.
	ResetAtDocumentStart *bool `yaml:"reset_at_document_start"`
}

// Resets reports whether batches mark document starts: pack mode, unless reset_at_document_start is
// false.
func (c FileConfig) Resets() bool {
	return c.Mode == ModePack && (c.ResetAtDocumentStart == nil || *c.ResetAtDocumentStart)
}

// Validate names the field and value that cannot work.
func (c FileConfig) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("data.path is empty: name a file, a glob or a directory")
	case c.Format != "" && c.Format != FormatAuto && c.Format != FormatArrow && c.Format != FormatParquet:
		return field.Errorf("data.format", c.Format, "want auto, arrow or parquet")
	case c.Mode != "" && c.Mode != ModePad && c.Mode != ModePack:
		return field.Errorf("data.mode", c.Mode, "want pad or pack")
	case c.TextColumn != "" && c.IDsColumn != "":
		return fmt.Errorf("data.text_column = %q and data.ids_column = %q: name one of them", c.TextColumn, c.IDsColumn)
	case c.TextColumn != "" && c.LabelsColumn != "":
		return field.Errorf("data.labels_column", c.LabelsColumn, "a text column gets next-token labels, it cannot have a labels column")
	case c.TextColumn != "" && c.ShiftLabels:
		return fmt.Errorf("data.shift_labels = true: a text column has no labels column to shift")
	case c.ResetAtDocumentStart != nil && *c.ResetAtDocumentStart && c.Mode != ModePack:
		return fmt.Errorf("data.reset_at_document_start = true with data.mode = %q: only pack mode puts several documents in a row", c.Mode)
	case c.Prefetch < -1:
		return field.Errorf("data.prefetch", c.Prefetch, "want -1 (off), 0 (default) or a positive depth")
	}
	return nil
}

func (c FileConfig) spec(vocab int) readSpec {
	s := readSpec{IDs: c.IDsColumn, Labels: c.LabelsColumn, Text: c.TextColumn, ShiftLabels: c.ShiftLabels, Vocab: vocab}
	if s.Text != "" {
		return s
	}
	if s.IDs == "" {
		s.IDs = "input_ids"
	}
	switch s.Labels {
	case "none":
		s.Labels = ""
	case "":
		s.Labels = "labels"
	default:
		s.LabelsRequired = true
	}
	return s
}

// ReadRows reads every file of cfg.Path into memory, checking each token id against vocab.
func ReadRows(cfg FileConfig, vocab int) (*Rows, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	files, err := ExpandPath(cfg.Path)
	if err != nil {
		return nil, err
	}
	rows := NewRows()
	spec := cfg.spec(vocab)
	for _, f := range files {
		if err := readPath(f, cfg.Format, spec, rows); err != nil {
			return nil, err
		}
	}
	if rows.Len() == 0 {
		return nil, fmt.Errorf("data.path %q: %d file(s), no rows", cfg.Path, len(files))
	}
	return rows, nil
}

// FileSource serves fixed-shape batches from rows held in memory. The rows are cut into examples
// (ModePad or ModePack); example number g = index*batchSize + r fills row r of batch index, and
// examples run through epochs without a gap: epoch g / N, position g % N of that epoch's order (the
// file order, or a permutation seeded by (seed, epoch) when shuffling). So a batch may straddle an
// epoch boundary, no example is dropped, and the batch index alone is the read position a checkpoint
// must save.
type FileSource struct {
	label     string
	rows      *Rows
	batchSize int
	seqLen    int
	seed      uint64
	shuffle   bool
	docStarts bool // mark document starts (pack mode with resets)
	pad       int32
	starts    []int64 // example e is rows.IDs[starts[e] : starts[e]+lens[e]]
	lens      []int32
	slots     int
	prefetch  *prefetcher

	mu    sync.Mutex
	perms map[int64][]int32 // the permutations of the epochs asked for last (at most two)
}

// OpenFiles reads the dataset of cfg and returns it as a Source of [batchSize, seqLen] batches.
// Errors name the file, row and column of bad input. The returned source is a *FileSource.
func OpenFiles(cfg FileConfig, batchSize, seqLen, vocab int, seed uint64) (Source, error) {
	if batchSize < 1 || seqLen < 1 || vocab < 1 {
		return nil, fmt.Errorf("data: batch size %d, seq_len %d and vocab %d must be positive", batchSize, seqLen, vocab)
	}
	rows, err := ReadRows(cfg, vocab)
	if err != nil {
		return nil, err
	}
	return NewFileSource(cfg, rows, batchSize, seqLen, seed)
}

// NewFileSource batches rows already read (or generated) as cfg says; cfg.Path only names the source.
func NewFileSource(cfg FileConfig, rows *Rows, batchSize, seqLen int, seed uint64) (*FileSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &FileSource{rows: rows, batchSize: batchSize, seqLen: seqLen, seed: seed, shuffle: cfg.Shuffle, docStarts: cfg.Resets(), perms: map[int64][]int32{}}
	if cfg.TextColumn != "" {
		s.pad = Pad
	}
	mode := cfg.Mode
	if mode == "" {
		mode = ModePad
	}
	s.cut(mode)
	if len(s.lens) == 0 {
		return nil, fmt.Errorf("data.path %q: the rows hold no tokens", cfg.Path)
	}
	if int64(len(s.lens)) > math.MaxInt32 {
		return nil, fmt.Errorf("data.path %q: %d examples, at most %d supported", cfg.Path, len(s.lens), math.MaxInt32)
	}
	s.slots = s.countSlots()
	s.label = fmt.Sprintf("files(%s: %d rows, %d tokens, %s, %d examples of %d)", cfg.Path, rows.Len(), rows.Tokens(), mode, len(s.lens), seqLen)
	switch depth := cfg.Prefetch; {
	case depth == 0:
		s.prefetch = newPrefetcher(2, s.assemble)
	case depth > 0:
		s.prefetch = newPrefetcher(depth, s.assemble)
	}
	return s, nil
}

// cut splits the rows into examples of at most seqLen tokens.
func (s *FileSource) cut(mode string) {
	window := func(from, to int64) {
		for a := from; a < to; a += int64(s.seqLen) {
			s.starts = append(s.starts, a)
			s.lens = append(s.lens, int32(min(int64(s.seqLen), to-a)))
		}
	}
	if mode == ModePack {
		window(0, s.rows.Tokens())
		return
	}
	for r := 0; r < s.rows.Len(); r++ {
		window(s.rows.Offsets[r], s.rows.Offsets[r+1])
	}
}

// countSlots is the most labelled positions in one example.
func (s *FileSource) countSlots() int {
	most := 0
	for e, a := range s.starts {
		n := 0
		for _, l := range s.rows.Labels[a : a+int64(s.lens[e])] {
			if l != Ignore {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// Name implements Source.
func (s *FileSource) Name() string { return s.label }

// LabelSlots implements Source: the most labelled positions of any example.
func (s *FileSource) LabelSlots() int { return s.slots }

// Examples is the number of examples in one epoch.
func (s *FileSource) Examples() int64 { return int64(len(s.lens)) }

// Epoch is the epoch (0, 1, ...) of the first row of batch index.
func (s *FileSource) Epoch(index int64) int64 { return index * int64(s.batchSize) / s.Examples() }

// BatchAt implements Source.
func (s *FileSource) BatchAt(index int64) (Batch, error) {
	if index < 0 || index > math.MaxInt64/int64(s.batchSize)-1 {
		return Batch{}, fmt.Errorf("%s: batch index %d out of range", s.label, index)
	}
	if s.prefetch != nil {
		return s.prefetch.get(index)
	}
	return s.assemble(index)
}

// assemble builds batch index; it is safe for concurrent use.
func (s *FileSource) assemble(index int64) (Batch, error) {
	// Every position is written below (tokens, or padding with Ignore labels), so the batch is not
	// pre-filled the way NewBatch does.
	b := Batch{Size: s.batchSize, SeqLen: s.seqLen, InputIDs: make([]int32, s.batchSize*s.seqLen), Labels: make([]int32, s.batchSize*s.seqLen)}
	if s.docStarts {
		b.DocStart = make([]int32, s.batchSize*s.seqLen)
	}
	n := s.Examples()
	for r := 0; r < s.batchSize; r++ {
		g := index*int64(s.batchSize) + int64(r)
		e := g % n
		if s.shuffle {
			e = int64(s.perm(g / n)[e])
		}
		ids, labels := b.Row(r)
		a, l := s.starts[e], int64(s.lens[e])
		copy(ids, s.rows.IDs[a:a+l])
		copy(labels, s.rows.Labels[a:a+l])
		for t := l; t < int64(s.seqLen); t++ {
			ids[t], labels[t] = s.pad, Ignore
		}
		if s.docStarts {
			s.markStarts(b.DocStart[r*s.seqLen:(r+1)*s.seqLen], a, a+l)
		}
	}
	return b, nil
}

// markStarts sets starts[t] = 1 where a row of the file (a document) begins at token a+t, for the
// window [a, b) of the concatenated rows.
func (s *FileSource) markStarts(starts []int32, a, b int64) {
	offsets := s.rows.Offsets
	for i := sort.Search(len(offsets), func(i int) bool { return offsets[i] >= a }); i < len(offsets) && offsets[i] < b; i++ {
		if i+1 < len(offsets) && offsets[i+1] == offsets[i] {
			continue // an empty row starts nothing
		}
		starts[offsets[i]-a] = 1
	}
}

// perm returns epoch's permutation of the examples (a Fisher-Yates shuffle seeded by seed and epoch).
func (s *FileSource) perm(epoch int64) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.perms[epoch]; ok {
		return p
	}
	n := len(s.lens)
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	rng := rand.New(rand.NewPCG(s.seed, 0x5851f42d4c957f2d^uint64(epoch)))
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	if len(s.perms) >= 2 {
		for k := range s.perms {
			if k != epoch-1 {
				delete(s.perms, k)
			}
		}
	}
	s.perms[epoch] = p
	return p
}
