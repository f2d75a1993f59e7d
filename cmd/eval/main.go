// Command eval measures trained runs on long-context tasks and writes tables and plots next to them.
//
//	eval -run runs/passkey_swa                                # the run's own eval: section
//	eval -run runs/a -run runs/b -tasks passkey -lengths 1K,4K,64K -depths 0,0.5,1
//	eval -run runs/mqar -tasks mqar -file test.parquet        # MQAR rows from Arrow/Parquet files
//	eval -run runs/x -tasks perplexity -file text.arrow -text_column text -lengths 4K
//
// Settings come from -config (a YAML file with an eval: section), else the first run's saved
// config.yaml; flags override them. Results go to <run>/eval/<task>.{csv,md}, <task>_heatmap.png and,
// comparing every run given, <task>_curve.png. The last line reports wall time and peak RSS.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/eval"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var runs multiFlag
	flag.Var(&runs, "run", "run directory to evaluate (repeatable; the curve compares them)")
	configFile := flag.String("config", "", "YAML file with an eval: section (default: the first run's config.yaml)")
	tasks := flag.String("tasks", "", "comma-separated tasks: "+strings.Join(eval.TaskNames(), ", "))
	lengths := flag.String("lengths", "", "comma-separated context lengths (512, 4K, 1M)")
	depths := flag.String("depths", "", "comma-separated needle depths in [0, 1]")
	pairs := flag.String("pairs", "", "comma-separated MQAR pair counts")
	samples := flag.Int("samples", 0, "rows per cell")
	segment := flag.Int("segment", 0, "tokens per streamed segment")
	file := flag.String("file", "", "Arrow/Parquet test rows for mqar, or the dataset for perplexity")
	textColumn := flag.String("text_column", "", "perplexity: string column to byte-tokenize")
	seed := flag.Uint64("seed", 0, "seed of the generated rows (0: from the config)")
	out := flag.String("out", "", "output directory (default <run>/eval)")
	plotOnly := flag.Bool("plot_only", false, "only re-draw the plots from the CSVs of an earlier evaluation")
	flag.Parse()
	if flag.NArg() > 0 || len(runs) == 0 {
		fail(fmt.Errorf("usage: eval -run DIR [-run DIR ...] [flags]; see -help"))
	}
	start := time.Now()
	cfg, err := settings(*configFile, runs[0])
	if err == nil {
		err = override(&cfg, *tasks, *lengths, *depths, *pairs, *samples, *segment, *file, *textColumn, *seed)
	}
	if err == nil {
		err = eval.Main(eval.Request{Runs: runs, Eval: cfg, Out: *out, Log: os.Stderr, PlotOnly: *plotOnly})
	}
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "eval: done in %.1fs, peak RSS %s\n", time.Since(start).Seconds(), peakRSS())
}

// settings reads the eval: section of -config, or of the run's saved config.
func settings(configFile, run string) (configs.Eval, error) {
	if configFile == "" {
		configFile = run + "/config.yaml"
	}
	src, err := os.ReadFile(configFile)
	if err != nil {
		return configs.Eval{}, err
	}
	exp, err := configs.Parse(configFile, src, nil)
	return exp.Eval, err
}

func override(e *configs.Eval, tasks, lengths, depths, pairs string, samples, segment int, file, textColumn string, seed uint64) error {
	var err error
	if tasks != "" {
		e.Tasks = strings.Split(tasks, ",")
	}
	if lengths != "" {
		if e.Lengths, err = parseList(lengths, "-lengths", parseLength); err != nil {
			return err
		}
	}
	if depths != "" {
		if e.Depths, err = parseList(depths, "-depths", func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
			return err
		}
	}
	if pairs != "" {
		if e.Pairs, err = parseList(pairs, "-pairs", strconv.Atoi); err != nil {
			return err
		}
	}
	if samples > 0 {
		e.Samples = samples
	}
	if segment > 0 {
		e.Segment = segment
	}
	if file != "" {
		e.File = file
	}
	if textColumn != "" {
		e.TextColumn = textColumn
	}
	if seed != 0 {
		e.Seed = seed
	}
	return e.Validate()
}

func parseList[T any](s, flagName string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %q: %w", flagName, s, f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseLength reads 512, 4K (4096) or 1M (1048576).
func parseLength(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

// peakRSS is the process's peak resident set size (VmHWM from /proc/self/status, Linux).
func peakRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "eval:", err)
	os.Exit(1)
}
