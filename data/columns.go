package data

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// readSpec says which columns of a file hold the data and how to check them.
type readSpec struct {
	IDs    string // list column of token ids (used when Text is empty)
	Labels string // list column of labels; "" = next-token labels
	Text   string // string column, tokenized by the byte tokenizer
	// LabelsRequired makes a missing Labels column an error (it was named explicitly); otherwise the
	// column is used when the file has it.
	LabelsRequired bool
	// ShiftLabels reads labels in the Hugging Face convention (labels[t] is the target at t; the model
	// shifts), turning them into ours (labels[t] is the target after t).
	ShiftLabels bool
	Vocab       int
}

// fileError is an error located in a file: row and column are named when known (row < 0: none).
func fileError(file string, row int64, column, format string, args ...any) error {
	var where strings.Builder
	fmt.Fprintf(&where, "file %s", file)
	if row >= 0 {
		fmt.Fprintf(&where, ": row %d", row)
	}
	if column != "" {
		fmt.Fprintf(&where, ", column %q", column)
	}
	return fmt.Errorf("%s: %s", where.String(), fmt.Sprintf(format, args...))
}

// columns are the positions of the needed fields in a file's schema.
type columns struct {
	main   int // ids or text field
	labels int // -1: next-token labels
}

// resolve finds and type-checks the columns of spec in a schema.
func (s readSpec) resolve(file string, schema *arrow.Schema) (columns, error) {
	cols := columns{labels: -1}
	name := s.mainColumn()
	idx := schema.FieldIndices(name)
	if len(idx) == 0 {
		return cols, fileError(file, 0, name, "no such column (the file has %s)", fieldNames(schema))
	}
	cols.main = idx[0]
	dt := schema.Field(cols.main).Type
	if s.Text != "" {
		if dt.ID() != arrow.STRING && dt.ID() != arrow.LARGE_STRING {
			return cols, fileError(file, 0, name, "type %s, want string or large_string", dt)
		}
		return cols, nil
	}
	if !isTokenList(dt) {
		return cols, fileError(file, 0, name, "type %s, want list, large_list or fixed_size_list of int32 or int64", dt)
	}
	if s.Labels == "" {
		return cols, nil
	}
	idx = schema.FieldIndices(s.Labels)
	if len(idx) == 0 {
		if s.LabelsRequired {
			return cols, fileError(file, 0, s.Labels, "no such column (the file has %s)", fieldNames(schema))
		}
		return cols, nil
	}
	cols.labels = idx[0]
	if dt := schema.Field(cols.labels).Type; !isTokenList(dt) {
		return cols, fileError(file, 0, s.Labels, "type %s, want list, large_list or fixed_size_list of int32 or int64", dt)
	}
	return cols, nil
}

func (s readSpec) mainColumn() string {
	if s.Text != "" {
		return s.Text
	}
	return s.IDs
}

func fieldNames(schema *arrow.Schema) string {
	if schema.NumFields() == 0 {
		return "no columns"
	}
	names := make([]string, schema.NumFields())
	for i := range names {
		names[i] = fmt.Sprintf("%q", schema.Field(i).Name)
	}
	return "columns " + strings.Join(names, ", ")
}

func isTokenList(dt arrow.DataType) bool {
	var elem arrow.DataType
	switch t := dt.(type) {
	case *arrow.ListType:
		elem = t.Elem()
	case *arrow.LargeListType:
		elem = t.Elem()
	case *arrow.FixedSizeListType:
		elem = t.Elem()
	default:
		return false
	}
	return elem.ID() == arrow.INT32 || elem.ID() == arrow.INT64
}

// fileRows appends one file's rows to a Rows set, one column chunk at a time. Row numbers in errors
// are the file's (0-based); base is the set's row index of the file's row 0.
type fileRows struct {
	file string
	spec readSpec
	rows *Rows
	base int
	// labelsCopyIDs stays true while every labels row read equals its input_ids row: the Hugging Face
	// convention (the model shifts), which read as ours would teach the identity.
	labelsCopyIDs bool
}

// addMain appends the rows of a chunk of the ids or text column, whose first row is file row first,
// with next-token labels.
func (f *fileRows) addMain(arr arrow.Array, first int64) error {
	name := f.spec.mainColumn()
	if err := array.Validate(arr); err != nil {
		return fileError(f.file, first, name, "corrupt column chunk: %v", err)
	}
	if f.spec.Text != "" {
		return f.addText(arr, first)
	}
	lists, vals, err := tokenLists(arr)
	if err != nil {
		return fileError(f.file, first, name, "%v", err)
	}
	rows := f.rows
	for i := 0; i < arr.Len(); i++ {
		start, end, err := listBounds(lists, vals, i)
		if err != nil {
			return fileError(f.file, first+int64(i), name, "%v", err)
		}
		n := len(rows.IDs)
		rows.IDs, err = appendTokens(rows.IDs, vals, start, end, f.spec.Vocab)
		if err != nil {
			return fileError(f.file, first+int64(i), name, "%v", err)
		}
		rows.Labels = appendNextTokenLabels(rows.Labels, rows.IDs[n:])
		rows.Offsets = append(rows.Offsets, int64(len(rows.IDs)))
	}
	return nil
}

// addText appends the rows of a chunk of a string column, each encoded by the byte tokenizer.
func (f *fileRows) addText(arr arrow.Array, first int64) error {
	name := f.spec.Text
	if f.spec.Vocab < ByteVocab {
		return fileError(f.file, first, name, "the byte tokenizer needs a vocabulary of at least %d, have %d", ByteVocab, f.spec.Vocab)
	}
	rows := f.rows
	for i := 0; i < arr.Len(); i++ {
		if arr.IsNull(i) {
			return fileError(f.file, first+int64(i), name, "null text")
		}
		var text string
		switch a := arr.(type) {
		case *array.String:
			text = a.Value(i)
		case *array.LargeString:
			text = a.Value(i)
		default:
			return fileError(f.file, first+int64(i), name, "type %s, want string or large_string", arr.DataType())
		}
		n := len(rows.IDs)
		rows.IDs = append(AppendBytes(rows.IDs, text), EOS)
		rows.Labels = appendNextTokenLabels(rows.Labels, rows.IDs[n:])
		rows.Offsets = append(rows.Offsets, int64(len(rows.IDs)))
	}
	return nil
}

// setLabels overwrites the labels of the rows in a chunk of the labels column (first = its first file
// row); those rows must already be there, with ids of the same lengths.
func (f *fileRows) setLabels(arr arrow.Array, first int64) error {
	name := f.spec.Labels
	if err := array.Validate(arr); err != nil {
		return fileError(f.file, first, name, "corrupt column chunk: %v", err)
	}
	lists, vals, err := tokenLists(arr)
	if err != nil {
		return fileError(f.file, first, name, "%v", err)
	}
	rows := f.rows
	for i := 0; i < arr.Len(); i++ {
		row := f.base + int(first) + i
		if row >= rows.Len() {
			return fileError(f.file, first+int64(i), name, "labels column has more rows than column %q", f.spec.IDs)
		}
		start, end, err := listBounds(lists, vals, i)
		if err != nil {
			return fileError(f.file, first+int64(i), name, "%v", err)
		}
		a, b := rows.Offsets[row], rows.Offsets[row+1]
		if end-start != b-a {
			return fileError(f.file, first+int64(i), name, "%d labels for %d input_ids (column %q): ragged row",
				end-start, b-a, f.spec.IDs)
		}
		if err := copyLabels(rows.Labels[a:b], vals, start, end, f.spec.Vocab, f.spec.ShiftLabels); err != nil {
			return fileError(f.file, first+int64(i), name, "%v", err)
		}
		f.labelsCopyIDs = f.labelsCopyIDs && !f.spec.ShiftLabels && equalInts(rows.Labels[a:b], rows.IDs[a:b])
	}
	return nil
}

// checkConvention refuses a labels column that is a copy of input_ids in every row.
func (f *fileRows) checkConvention(sawLabels bool) error {
	if sawLabels && f.labelsCopyIDs && f.rows.Len() > f.base {
		return fileError(f.file, 0, f.spec.Labels, "labels equal %s in every row: this is the Hugging Face convention "+
			"(labels[t] is the target at t); set shift_labels: true to read it, or leave the labels column out", f.spec.IDs)
	}
	return nil
}

func equalInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tokenLists unpacks a list column and its int32 or int64 values.
func tokenLists(arr arrow.Array) (array.ListLike, arrow.Array, error) {
	lists, ok := arr.(array.ListLike)
	if !ok || !isTokenList(arr.DataType()) {
		return nil, nil, fmt.Errorf("type %s, want list, large_list or fixed_size_list of int32 or int64", arr.DataType())
	}
	vals := lists.ListValues()
	if err := array.Validate(vals); err != nil {
		return nil, nil, fmt.Errorf("corrupt list values: %w", err)
	}
	return lists, vals, nil
}

// listBounds returns the value range of list i, checked against the values array.
func listBounds(lists array.ListLike, vals arrow.Array, i int) (start, end int64, err error) {
	if lists.IsNull(i) {
		return 0, 0, fmt.Errorf("null list")
	}
	start, end = lists.ValueOffsets(i)
	if start < 0 || end < start || end > int64(vals.Len()) {
		return 0, 0, fmt.Errorf("corrupt list offsets [%d, %d) for %d values", start, end, vals.Len())
	}
	if vals.NullN() > 0 {
		for j := start; j < end; j++ {
			if vals.IsNull(int(j)) {
				return 0, 0, fmt.Errorf("position %d: null token", j-start)
			}
		}
	}
	return start, end, nil
}

// appendTokens appends vals[start:end] to dst, checking each id is in [0, vocab).
func appendTokens(dst []int32, vals arrow.Array, start, end int64, vocab int) ([]int32, error) {
	switch v := vals.(type) {
	case *array.Int32:
		src := v.Int32Values()[start:end]
		for t, id := range src {
			if uint32(id) >= uint32(vocab) {
				return dst, fmt.Errorf("position %d: token id %d is outside the vocabulary [0, %d)", t, id, vocab)
			}
		}
		return append(dst, src...), nil
	case *array.Int64:
		src := v.Int64Values()[start:end]
		for t, id := range src {
			if uint64(id) >= uint64(vocab) {
				return dst, fmt.Errorf("position %d: token id %d is outside the vocabulary [0, %d)", t, id, vocab)
			}
			dst = append(dst, int32(id))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("list values of type %s, want int32 or int64", vals.DataType())
}

// copyLabels writes vals[start:end] into dst (same length), checking each is Ignore or in [0, vocab).
// With shift, dst[t] = vals[start+t+1] and the last label is Ignore.
func copyLabels(dst []int32, vals arrow.Array, start, end int64, vocab int, shift bool) error {
	switch v := vals.(type) {
	case *array.Int32:
		return copyLabelsOf(dst, v.Int32Values()[start:end], vocab, shift)
	case *array.Int64:
		return copyLabelsOf(dst, v.Int64Values()[start:end], vocab, shift)
	}
	return fmt.Errorf("list values of type %s, want int32 or int64", vals.DataType())
}

func copyLabelsOf[T int32 | int64](dst []int32, src []T, vocab int, shift bool) error {
	from := 0
	if shift && len(dst) > 0 {
		from = 1
		dst[len(dst)-1] = Ignore
	}
	for j := from; j < len(src); j++ {
		l := int64(src[j])
		if l != Ignore && (l < 0 || l >= int64(vocab)) {
			return fmt.Errorf("position %d: label %d is outside the vocabulary [0, %d) and is not %d", j, l, vocab, Ignore)
		}
		dst[j-from] = int32(l)
	}
	return nil
}
