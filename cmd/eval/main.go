// Command eval measures trained runs (or exports) on long-context tasks, writing tables and plots: settings
// from -config or the run's, then -set eval.<key>=<value> and shorthands (package eval: Settings, Evaluate).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/engramlx/engram/eval"
	"github.com/engramlx/engram/internal/cli"
)

const usage = `Usage: eval -run DIR [-run DIR ...] [flags]

  eval -run runs/passkey_swa                                # the run's own eval: section
  eval -run runs/a -run runs/b -tasks passkey -lengths 1K,4K,64K -depths 0,0.5,1
  eval -run runs/mqar -tasks mqar -file test.parquet        # MQAR rows from Arrow/Parquet files
  eval -run runs/quickstart/export                          # an export (cmd/export) evaluates like its run`

// shorthands are flags that stand for -set eval.<key>=<value> (list values get brackets).
var shorthands = []struct {
	key, help string
	list      bool
}{
	{"tasks", "comma-separated tasks: " + strings.Join(eval.TaskNames(), ", "), true},
	{"lengths", "comma-separated context lengths (512, 4K, 1M)", false},
	{"depths", "comma-separated needle depths in [0, 1]", true},
	{"pairs", "comma-separated MQAR pair counts", true},
	{"samples", "rows per cell", false},
	{"segment", "tokens per streamed segment", false},
	{"text_column", "perplexity: string column to byte-tokenize", false},
	{"seed", "seed of the generated rows", false},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	c := cli.New("eval", "evaluate trained runs on long-context and recall tasks (tables, heatmaps, curves)", usage, stdout, stderr)
	var runs, sets, files cli.List
	c.Flags.Var(&runs, "run", "run directory, or export directory (cmd/export), to evaluate (repeatable; the curve compares them)")
	c.Flags.Var(&sets, "set", "override an eval key, e.g. -set eval.lengths=4K,16K (repeatable)")
	c.Flags.Var(&files, "file", "Arrow/Parquet test rows for mqar, passkey and the needles, or the dataset for perplexity (repeatable)")
	configFile := c.Flags.String("config", "", "YAML file with an eval: section (default: the first run's config.yaml)")
	out := c.Flags.String("out", "", "output directory (default <run>/eval)")
	plotOnly := c.Flags.Bool("plot_only", false, "only re-draw the plots from the CSVs of an earlier evaluation")
	values := make([]*string, len(shorthands))
	for i, s := range shorthands {
		values[i] = c.Flags.String(s.key, "", s.help+" (default: from the config)")
	}
	if code, ok := c.Parse(args); !ok {
		return code
	}
	if len(runs) == 0 {
		return c.Usagef("-run is required")
	}
	for i, s := range shorthands {
		if v := *values[i]; v != "" {
			if s.list && !strings.HasPrefix(v, "[") {
				v = "[" + v + "]"
			}
			sets = append(sets, "eval."+s.key+"="+v)
		}
	}
	if len(files) > 0 {
		sets = append(sets, "eval.file=["+strings.Join(files, ",")+"]")
	}
	start := time.Now()
	cfg, err := eval.Settings(*configFile, runs[0], sets)
	if err == nil {
		err = eval.Evaluate(eval.Request{Runs: runs, Eval: cfg, Out: *out, Log: stderr, PlotOnly: *plotOnly})
	}
	if err == nil {
		fmt.Fprintf(stderr, "eval: done in %.1fs, peak RSS %s\n", time.Since(start).Seconds(), cli.PeakRSS())
	}
	return c.Exit(err)
}
