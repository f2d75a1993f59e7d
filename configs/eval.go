package configs

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Eval is the `eval:` section of an experiment: what cmd/eval measures on a trained run. Flags of
// cmd/eval override it. Task names are checked by the eval package (configs does not import it).
type Eval struct {
	// Tasks to run: passkey, needle, needle_multikey, needle_multivalue, needle_multiquery, mqar, copy,
	// perplexity.
	Tasks []string `yaml:"tasks"`
	// Lengths are the context lengths in tokens (bytes for the byte-level tasks): [512, 4K, 1M], or
	// "4K,16K" as one string (how -set eval.lengths=4K,16K arrives).
	Lengths Lengths `yaml:"lengths"`
	// Depths are needle depths in [0, 1] (0 = start of the haystack, 1 = just before the question).
	Depths []float64 `yaml:"depths"`
	// Pairs are MQAR's key-value pair counts.
	Pairs []int `yaml:"pairs"`
	// Samples is the number of rows per grid cell.
	Samples int `yaml:"samples"`
	// Segment is the number of tokens per streamed segment: one compiled graph of that length runs over
	// the whole context with the model's state carried.
	Segment int `yaml:"segment"`
	// Files, when set, are Arrow or Parquet files (each a file, a glob or a directory) of test rows
	// (input_ids, labels) for mqar, passkey and the needles, or the dataset for perplexity, instead of
	// generated rows: `file: test.parquet`, `file: [a.parquet, b.arrow]`, or "a.parquet,b.arrow" as one
	// string (how repeated -file flags arrive).
	Files Paths `yaml:"file"`
	// TextColumn names a string column of Files to byte-tokenize (perplexity on text).
	TextColumn string `yaml:"text_column"`
	// Seed of the generated rows (drawn from the test split, so never the training rows).
	Seed uint64 `yaml:"seed"`
}

// DefaultEval is a small passkey grid.
func DefaultEval() Eval {
	return Eval{
		Tasks: []string{"passkey"}, Lengths: []int{512, 1024, 2048, 4096}, Depths: []float64{0, 0.25, 0.5, 0.75, 1},
		Pairs: []int{4, 8, 16}, Samples: 4, Segment: 512, Seed: 1234,
	}
}

// Validate names the field and value that cannot work.
func (e Eval) Validate() error {
	switch {
	case len(e.Tasks) == 0:
		return fmt.Errorf("eval.tasks is empty")
	case len(e.Lengths) == 0:
		return fmt.Errorf("eval.lengths is empty")
	case e.Samples < 1:
		return fmt.Errorf("eval.samples = %d: must be >= 1", e.Samples)
	case e.Segment < 1:
		return fmt.Errorf("eval.segment = %d: must be >= 1", e.Segment)
	}
	for i, l := range e.Lengths {
		if l < 1 {
			return fmt.Errorf("eval.lengths[%d] = %d: must be >= 1", i, l)
		}
	}
	for i, d := range e.Depths {
		if !(d >= 0 && d <= 1) {
			return fmt.Errorf("eval.depths[%d] = %g: must be in [0, 1]", i, d)
		}
	}
	for i, p := range e.Pairs {
		if p < 1 {
			return fmt.Errorf("eval.pairs[%d] = %d: must be >= 1", i, p)
		}
	}
	return nil
}

// Paths are file paths that read from a list or from one string of comma-separated paths ("" = none).
type Paths []string

// UnmarshalYAML reads a sequence of paths, or one string of comma-separated paths.
func (p *Paths) UnmarshalYAML(node *yaml.Node) error {
	var items []string
	switch node.Kind {
	case yaml.SequenceNode:
		for _, n := range node.Content {
			if n.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a file must be a path", n.Line)
			}
			items = append(items, n.Value)
		}
	case yaml.ScalarNode:
		items = strings.Split(node.Value, ",")
	default:
		return fmt.Errorf("line %d: file must be a path or a list of paths", node.Line)
	}
	var out Paths
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*p = out
	return nil
}

// Lengths are context lengths that read 512, 4K (4,096) or 1M (1,048,576).
type Lengths []int

// UnmarshalYAML reads a sequence of lengths, or one string of comma-separated lengths.
func (l *Lengths) UnmarshalYAML(node *yaml.Node) error {
	var items []string
	switch node.Kind {
	case yaml.SequenceNode:
		for _, n := range node.Content {
			if n.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a length must be a number like 512, 4K or 1M", n.Line)
			}
			items = append(items, n.Value)
		}
	case yaml.ScalarNode:
		items = strings.Split(node.Value, ",")
	default:
		return fmt.Errorf("line %d: lengths must be a list like [512, 4K, 1M]", node.Line)
	}
	out := make(Lengths, 0, len(items))
	for _, item := range items {
		n, err := ParseLength(strings.TrimSpace(item))
		if err != nil {
			return fmt.Errorf("line %d: %w", node.Line, err)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// ParseLength reads 512, 4K (4,096) or 1M (1,048,576).
func ParseLength(s string) (int, error) {
	mult, digits := 1, s
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, digits = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, digits = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("length %q: want a positive number like 512, 4K or 1M", s)
	}
	return n * mult, nil
}
