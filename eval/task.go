package eval

import (
	"fmt"
	"sort"
	"strings"

	"github.com/engramlx/engram/data"
)

// SplitTest is the generator split evaluation rows are drawn from (data.SplitTest: never the training
// or in-training evaluation rows).
const SplitTest = data.SplitTest

// Point is one grid cell's coordinates: a context length and the value on the task's second axis
// (needle depth, MQAR pair count; 0 when the task has none).
type Point struct {
	Length int
	At     float64
}

// Task is one evaluation task: the grid points it measures, the rows of each point and the score of a
// row. Each task lives in its own file.
type Task interface {
	// Name is the task's name in flags, YAML and file names.
	Name() string
	// Axis names the second grid axis ("depth", "pairs") or is "" when the task has none.
	Axis() string
	// Points lists the grid for the requested lengths and axis values (file-backed tasks list what
	// their files hold instead).
	Points(lengths []int, axis []float64) []Point
	// Rows returns the inputs of one point, each of at most rows rows drawn from seed (or read from a
	// file), and the most labelled positions a row has.
	Rows(p Point, rows int, seed uint64) (inputs []Input, slots int, err error)
	// Score is one row's score in [0, 1] (the task's accuracy metric).
	Score(r RowResult) float64
}

// Options are the settings tasks are built from.
type Options struct {
	Vocab int       // the model's vocabulary
	MQAR  data.MQAR // MQAR template (vocab, power_a); SeqLen and NumPairs come from the grid
	Pairs []int     // MQAR pair counts (the grid's axis for mqar)
	// CopyLength is how many tokens the copy task asks to reproduce: the run's data.copy.length when it
	// trained on the copy task, so its own rows are scored as in training; 0 = 16.
	CopyLength int
	// Files are Arrow / Parquet files (each a file, glob or directory) of test rows: mqar, passkey and
	// the needles read (input_ids, labels) rows from them (and a depth column when present), perplexity
	// reads their tokens (TextColumn: a string column, byte-tokenized).
	Files      []string
	TextColumn string
}

// taskBuilders maps a task name to its constructor. Every constructor checks the task's token range
// against the model's vocabulary, so a task the model cannot read is refused, not scored as zeros.
var taskBuilders = map[string]func(o Options) (Task, error){
	"passkey":           byteTask("passkey", newPasskeyTask),
	"needle":            byteTask("needle", needleTask("needle", data.Needle{})),
	"needle_multikey":   byteTask("needle_multikey", needleTask("needle_multikey", data.Needle{Keys: 4})),
	"needle_multivalue": byteTask("needle_multivalue", needleTask("needle_multivalue", data.Needle{Values: 4})),
	"needle_multiquery": byteTask("needle_multiquery", needleTask("needle_multiquery", data.Needle{Keys: 4, Queries: 2})),
	"mqar":              newMQARTask,
	"copy":              newCopyTask,
	"perplexity":        newPerplexityTask,
}

// byteTask is the constructor of a byte-level task (its ids reach data.ByteVocab-1), refused for a
// model whose vocabulary is smaller.
func byteTask(name string, task func(o Options) (Task, error)) func(o Options) (Task, error) {
	return func(o Options) (Task, error) {
		if o.Vocab < data.ByteVocab {
			return nil, fmt.Errorf("task %s is byte-level (token ids up to %d) but the model's vocabulary is %d; pick a task of the model's own data (e.g. -tasks mqar or copy)", name, data.ByteVocab-1, o.Vocab)
		}
		return task(o)
	}
}

// TaskNames lists the known tasks, sorted.
func TaskNames() []string {
	names := make([]string, 0, len(taskBuilders))
	for n := range taskBuilders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewTask builds the task called name.
func NewTask(name string, o Options) (Task, error) {
	build, ok := taskBuilders[name]
	if !ok {
		return nil, fmt.Errorf("eval: unknown task %q (known: %s)", name, strings.Join(TaskNames(), ", "))
	}
	return build(o)
}

// grid is the product of lengths and axis values (one point per length when axis is empty).
func grid(lengths []int, axis []float64) []Point {
	if len(axis) == 0 {
		axis = []float64{0}
	}
	var points []Point
	for _, a := range axis {
		for _, l := range lengths {
			points = append(points, Point{Length: l, At: a})
		}
	}
	return points
}

// generated draws rows rows of a data.Task from the test split as one in-memory input.
func generated(task data.Task, rows int, seed uint64) ([]Input, int, error) {
	src, err := data.NewTaskSource(task, rows, seed, SplitTest)
	if err != nil {
		return nil, 0, err
	}
	b, err := src.BatchAt(0)
	if err != nil {
		return nil, 0, err
	}
	return []Input{BatchInput{b}}, src.LabelSlots(), nil
}

// exactMatch is 1 when every labelled position is predicted right: with teacher forcing this equals
// greedy decoding's exact match (greedy reproduces the answer iff each step's argmax is the target).
func exactMatch(r RowResult) float64 {
	for i := range r.Targets {
		if r.Argmax[i] != r.Targets[i] {
			return 0
		}
	}
	return 1
}

// tokenAccuracy is the fraction of labelled positions predicted right (0 for a row without any).
func tokenAccuracy(r RowResult) float64 {
	if len(r.Targets) == 0 {
		return 0
	}
	right := 0
	for i := range r.Targets {
		if r.Argmax[i] == r.Targets[i] {
			right++
		}
	}
	return float64(right) / float64(len(r.Targets))
}
