package eval

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/engramlx/engram/data"
)

// DepthColumn is the optional float column of a test file giving each row's needle depth in [0, 1].
const DepthColumn = "depth"

// fileRows are test rows read from files, grouped by grid point: how a file-backed task lists its grid
// (the points its files hold, not the requested lengths) and hands out the rows of a point.
type fileRows struct {
	names  string // the files, for errors
	rows   *data.Rows
	groups map[Point][]int // rows of each point, in file order
}

// rowPoint places one row on the grid; depth is the row's value in the file's depth column, NaN when
// the file has none.
type rowPoint func(ids, labels []int32, depth float64) (Point, error)

// readFileRows reads the rows (input_ids, labels) of every file (each a file, glob or directory), in
// order, and groups them by point.
func readFileRows(files []string, vocab int, point rowPoint) (*fileRows, error) {
	f := &fileRows{names: strings.Join(files, ", "), rows: data.NewRows(), groups: map[Point][]int{}}
	for _, pattern := range files {
		paths, err := data.ExpandPath(pattern)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			rows, err := data.ReadRows(data.FileConfig{Path: path}, vocab)
			if err != nil {
				return nil, err
			}
			depths, err := readDepths(path, rows.Len())
			if err != nil {
				return nil, err
			}
			for r := 0; r < rows.Len(); r++ {
				ids, labels := rows.Row(r)
				p, err := point(ids, labels, depths[r])
				if err != nil {
					return nil, fmt.Errorf("%s, row %d: %w", path, r, err)
				}
				f.groups[p] = append(f.groups[p], f.rows.Len())
				f.rows.Append(ids, labels)
			}
		}
	}
	return f, nil
}

// points lists the grid points the files hold, by axis value then length.
func (f *fileRows) points() []Point {
	points := make([]Point, 0, len(f.groups))
	for p := range f.groups {
		points = append(points, p)
	}
	sort.Slice(points, func(i, j int) bool {
		if points[i].At != points[j].At {
			return points[i].At < points[j].At
		}
		return points[i].Length < points[j].Length
	})
	return points
}

// inputs returns the rows of point p in inputs of at most rows rows each.
func (f *fileRows) inputs(p Point, rows int) ([]Input, error) {
	group := f.groups[p]
	if len(group) == 0 {
		return nil, fmt.Errorf("eval: %s has no rows of length %d at %g", f.names, p.Length, p.At)
	}
	var inputs []Input
	for start := 0; start < len(group); start += rows {
		part := group[start:min(start+rows, len(group))]
		b := data.NewBatch(len(part), p.Length)
		for i, r := range part {
			ids, labels := f.rows.Row(r)
			bi, bl := b.Row(i)
			copy(bi, ids)
			copy(bl, labels)
		}
		inputs = append(inputs, BatchInput{b})
	}
	return inputs, nil
}

// mostLabels is the most labelled positions a row of point p has.
func (f *fileRows) mostLabels(p Point) int {
	most := 0
	for _, r := range f.groups[p] {
		_, labels := f.rows.Row(r)
		most = max(most, labelled(labels))
	}
	return most
}

// readDepths reads the depth column of an Arrow IPC (file or stream) or Parquet file: n values, all
// NaN when the file has no such column. A column of another type or length is an error.
func readDepths(path string, n int) ([]float64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var chunks []arrow.Array
	switch {
	case bytes.HasPrefix(raw, []byte("PAR1")):
		chunks, err = parquetColumn(raw, DepthColumn)
	case bytes.HasPrefix(raw, []byte("ARROW1")):
		chunks, err = arrowFileColumn(raw, DepthColumn)
	default:
		chunks, err = arrowStreamColumn(raw, DepthColumn)
	}
	if err != nil {
		return nil, fmt.Errorf("%s, column %q: %w", path, DepthColumn, err)
	}
	depths := make([]float64, 0, n)
	for _, c := range chunks {
		for i := 0; i < c.Len(); i++ {
			switch a := c.(type) {
			case *array.Float64:
				depths = append(depths, a.Value(i))
			case *array.Float32:
				depths = append(depths, float64(a.Value(i)))
			default:
				return nil, fmt.Errorf("%s, column %q: type %s, want float32 or float64", path, DepthColumn, c.DataType())
			}
		}
		c.Release()
	}
	if chunks == nil {
		for range n {
			depths = append(depths, math.NaN())
		}
	}
	if len(depths) != n {
		return nil, fmt.Errorf("%s, column %q: %d values for %d rows", path, DepthColumn, len(depths), n)
	}
	for i, d := range depths {
		if !math.IsNaN(d) && !(d >= 0 && d <= 1) {
			return nil, fmt.Errorf("%s, row %d, column %q: %g is not in [0, 1]", path, i, DepthColumn, d)
		}
	}
	return depths, nil
}

// arrowFileColumn returns the chunks of column name of an Arrow IPC file (nil when it has none).
func arrowFileColumn(raw []byte, name string) ([]arrow.Array, error) {
	r, err := ipc.NewFileReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	col := columnIndex(r.Schema(), name)
	if col < 0 {
		return nil, nil
	}
	var chunks []arrow.Array
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordBatch(i)
		if err != nil {
			return nil, err
		}
		c := rec.Column(col)
		c.Retain()
		chunks = append(chunks, c)
	}
	return chunks, nil
}

// arrowStreamColumn returns the chunks of column name of an Arrow IPC stream (nil when it has none).
func arrowStreamColumn(raw []byte, name string) ([]arrow.Array, error) {
	r, err := ipc.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer r.Release()
	col := columnIndex(r.Schema(), name)
	if col < 0 {
		return nil, nil
	}
	var chunks []arrow.Array
	for r.Next() {
		c := r.RecordBatch().Column(col)
		c.Retain()
		chunks = append(chunks, c)
	}
	return chunks, r.Err()
}

// parquetColumn returns the chunks of column name of a Parquet file (nil when it has none).
func parquetColumn(raw []byte, name string) ([]arrow.Array, error) {
	pf, err := file.NewParquetReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, err
	}
	col := columnIndex(schema, name)
	if col < 0 {
		return nil, nil
	}
	table, err := fr.ReadRowGroups(context.Background(), []int{col}, nil)
	if err != nil {
		return nil, err
	}
	defer table.Release()
	var chunks []arrow.Array
	for _, c := range table.Column(0).Data().Chunks() {
		c.Retain()
		chunks = append(chunks, c)
	}
	return chunks, nil
}

func columnIndex(schema *arrow.Schema, name string) int {
	if idx := schema.FieldIndices(name); len(idx) > 0 {
		return idx[0]
	}
	return -1
}
