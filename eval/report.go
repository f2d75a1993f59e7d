package eval

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"os"
	"sort"
	"strconv"
	"strings"
)

// CSVHeader is the first line of a results CSV.
var CSVHeader = []string{"run", "task", "length", "axis", "at", "rows", "accuracy", "token_accuracy", "bits_per_token", "status", "seconds"}

// CSV renders cells as CSV, one line per cell (numbers empty when the cell was not measured).
func CSV(cells []Cell) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(CSVHeader)
	for _, c := range cells {
		row := []string{c.Run, c.Task, strconv.Itoa(c.Length), c.Axis, strconv.FormatFloat(c.At, 'g', -1, 64), "", "", "", "", c.Status, ""}
		if c.Measured() {
			row[5] = strconv.Itoa(c.Rows)
			row[6], row[7], row[8] = num(c.Accuracy), num(c.TokenAccuracy), num(c.BitsPerToken)
			row[10] = strconv.FormatFloat(c.Seconds, 'f', 2, 64)
		}
		_ = w.Write(row)
	}
	w.Flush()
	return buf.Bytes()
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// Markdown renders the cells of one run and task as a table: one row per axis value (depth, pairs),
// one column per context length, accuracy in percent, "exceeds cache" where the cache was too short.
// Tasks without an axis get one row; perplexity-like tasks also list bits per token.
func Markdown(cells []Cell) []byte {
	if len(cells) == 0 {
		return nil
	}
	lengths, ats := axes(cells)
	at := map[[2]float64]Cell{}
	for _, c := range cells {
		at[[2]float64{float64(c.Length), c.At}] = c
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: accuracy (%%) by context length", cells[0].Task, cells[0].Run)
	if cells[0].Axis != "" {
		fmt.Fprintf(&b, " and %s", cells[0].Axis)
	}
	b.WriteString("\n\n| " + orDash(cells[0].Axis) + " |")
	for _, l := range lengths {
		fmt.Fprintf(&b, " %s |", LengthLabel(l))
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(lengths)) + "\n")
	for _, a := range ats {
		fmt.Fprintf(&b, "| %g |", a)
		for _, l := range lengths {
			c, ok := at[[2]float64{float64(l), a}]
			switch {
			case !ok:
				b.WriteString(" |")
			case !c.Measured():
				fmt.Fprintf(&b, " %s |", c.Status)
			default:
				fmt.Fprintf(&b, " %.1f |", 100*c.Accuracy)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| context length |")
	for _, l := range lengths {
		fmt.Fprintf(&b, " %s |", LengthLabel(l))
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(lengths)) + "\n| bits per token (mean over rows) |")
	for _, l := range lengths {
		fmt.Fprintf(&b, " %s |", meanBits(cells, l))
	}
	b.WriteString("\n")
	return []byte(b.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// meanBits is the row-weighted mean bits per token of the measured cells at length l.
func meanBits(cells []Cell, l int) string {
	var sum float64
	rows := 0
	for _, c := range cells {
		if c.Length == l && c.Measured() {
			sum += c.BitsPerToken * float64(c.Rows)
			rows += c.Rows
		}
	}
	if rows == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", sum/float64(rows))
}

// axes returns the sorted distinct lengths and axis values of cells.
func axes(cells []Cell) (lengths []int, ats []float64) {
	seenL, seenA := map[int]bool{}, map[float64]bool{}
	for _, c := range cells {
		if !seenL[c.Length] {
			seenL[c.Length] = true
			lengths = append(lengths, c.Length)
		}
		if !seenA[c.At] {
			seenA[c.At] = true
			ats = append(ats, c.At)
		}
	}
	sort.Ints(lengths)
	sort.Float64s(ats)
	return lengths, ats
}

// LengthLabel writes a context length the way papers do: 512, 4K, 64K, 1M.
func LengthLabel(l int) string {
	switch {
	case l >= 1<<20 && l%(1<<20) == 0:
		return fmt.Sprintf("%dM", l>>20)
	case l >= 1<<10 && l%(1<<10) == 0:
		return fmt.Sprintf("%dK", l>>10)
	}
	return strconv.Itoa(l)
}

// WriteTables writes <prefix>.csv and <prefix>.md atomically.
func WriteTables(prefix string, cells []Cell) error {
	if err := fsutil.WriteFileAtomic(prefix+".csv", CSV(cells)); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(prefix+".md", Markdown(cells))
}

// ReadCSV reads cells written by CSV (to re-plot results without re-running them); errors name the
// file, line and column.
func ReadCSV(file string) ([]Cell, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(records) == 0 || strings.Join(records[0], ",") != strings.Join(CSVHeader, ",") {
		return nil, fmt.Errorf("%s: line 1: want the header %s", file, strings.Join(CSVHeader, ","))
	}
	var cells []Cell
	for i, r := range records[1:] {
		c := Cell{Run: r[0], Task: r[1], Axis: r[3], Status: r[9]}
		var errs []error
		parse := func(col int, dst *float64) {
			if v, err := strconv.ParseFloat(r[col], 64); err != nil {
				errs = append(errs, fmt.Errorf("%s: line %d, column %s: %w", file, i+2, CSVHeader[col], err))
			} else {
				*dst = v
			}
		}
		var length, rows float64
		parse(2, &length)
		parse(4, &c.At)
		if c.Measured() {
			parse(5, &rows)
			parse(6, &c.Accuracy)
			parse(7, &c.TokenAccuracy)
			parse(8, &c.BitsPerToken)
			parse(10, &c.Seconds)
		}
		if len(errs) > 0 {
			return nil, errs[0]
		}
		c.Length, c.Rows = int(length), int(rows)
		cells = append(cells, c)
	}
	return cells, nil
}
