package data

import "fmt"

// Rows is a set of variable-length rows held in memory: every row's input ids and labels, concatenated.
// Row r is IDs[Offsets[r]:Offsets[r+1]], with its labels at the same positions of Labels; labels[t] is
// the token that must follow ids[t] (Ignore where there is no loss).
type Rows struct {
	IDs     []int32
	Labels  []int32
	Offsets []int64 // len = Len() + 1, Offsets[0] = 0
}

// NewRows returns an empty set.
func NewRows() *Rows { return &Rows{Offsets: []int64{0}} }

// Len is the number of rows.
func (r *Rows) Len() int { return len(r.Offsets) - 1 }

// Tokens is the number of tokens in all rows.
func (r *Rows) Tokens() int64 { return r.Offsets[len(r.Offsets)-1] }

// Row returns the ids and labels of row i (slices into the set).
func (r *Rows) Row(i int) (ids, labels []int32) {
	a, b := r.Offsets[i], r.Offsets[i+1]
	return r.IDs[a:b], r.Labels[a:b]
}

// Append adds a row, copying ids and labels (which must have the same length).
func (r *Rows) Append(ids, labels []int32) {
	r.IDs = append(r.IDs, ids...)
	r.Labels = append(r.Labels, labels...)
	r.Offsets = append(r.Offsets, int64(len(r.IDs)))
}

// AppendBatch adds every row of a batch.
func (r *Rows) AppendBatch(b Batch) {
	for i := 0; i < b.Size; i++ {
		r.Append(b.Row(i))
	}
}

// Equal reports whether two sets hold the same rows; when they differ, the error says where.
func (r *Rows) Equal(o *Rows) error {
	if r.Len() != o.Len() {
		return fmt.Errorf("%d rows vs %d", r.Len(), o.Len())
	}
	for i := 0; i < r.Len(); i++ {
		a, al := r.Row(i)
		b, bl := o.Row(i)
		if len(a) != len(b) {
			return fmt.Errorf("row %d: length %d vs %d", i, len(a), len(b))
		}
		for t := range a {
			if a[t] != b[t] {
				return fmt.Errorf("row %d, position %d: input_ids %d vs %d", i, t, a[t], b[t])
			}
			if al[t] != bl[t] {
				return fmt.Errorf("row %d, position %d: labels %d vs %d", i, t, al[t], bl[t])
			}
		}
	}
	return nil
}

// appendNextTokenLabels appends the default labels of ids: each token's label is the token after it,
// and the row's last token has none.
func appendNextTokenLabels(dst, ids []int32) []int32 {
	if len(ids) == 0 {
		return dst
	}
	dst = append(dst, ids[1:]...)
	return append(dst, Ignore)
}

// GenerateRows draws n rows from a generator source exactly as training sees them: rows come from
// batches 0, 1, ... in order, so a file source over the result (pad mode, no shuffle, the same batch
// size) replays the generator's batches; a partial last batch contributes its first rows.
func GenerateRows(src *GeneratorSource, n int) (*Rows, error) {
	if n < 0 || src.BatchSize < 1 {
		return nil, fmt.Errorf("%s: cannot draw %d rows in batches of %d", src.Name(), n, src.BatchSize)
	}
	rows := NewRows()
	for index := int64(0); rows.Len() < n; index++ {
		b, err := src.BatchAt(index)
		if err != nil {
			return nil, err
		}
		for r := 0; r < b.Size && rows.Len() < n; r++ {
			rows.Append(b.Row(r))
		}
	}
	return rows, nil
}
