package sweep

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/model"
)

// metrics are the per-run numbers the tables carry, read from summary.json, and the model's size from
// its config (parameters, state bytes).
var metrics = []struct {
	name  string
	value func(Row) float64
}{
	{"eval_accuracy", func(r Row) float64 { return r.Summary.EvalAccuracy }},
	{"eval_loss", func(r Row) float64 { return r.Summary.EvalLoss }},
	{"train_loss", func(r Row) float64 { return r.Summary.TrainLoss }},
	{"steps", func(r Row) float64 { return float64(r.Summary.Steps) }},
	{"wall_seconds", func(r Row) float64 { return r.Summary.WallSeconds }},
	{"tokens_per_sec", func(r Row) float64 { return r.Summary.TokensPerSec }},
	{"parameters", func(r Row) float64 { return float64(r.Summary.Parameters) }},
	{"state_bytes", func(r Row) float64 { return float64(StateBytes(r.Run.Exp)) }},
}

// StateBytes is what Zoology plots recall against: 4 bytes per element of the recurrent state of one
// row, summed over the layers, as the mixers' StateSpecs give it (conv caches included), with full
// attention's KV cache at the run's row length (data.SeqLen). 0 when the model cannot be built.
func StateBytes(exp configs.Experiment) int {
	m, err := model.New(exp.Model)
	if err != nil {
		return 0
	}
	elements := 0
	for _, spec := range m.StateSpecsForContext(1, exp.Data.SeqLen()) {
		elements += spec.Shape.Size()
	}
	return 4 * elements
}

// Group is one configuration (all swept values but the seed) with its runs' statistics.
type Group struct {
	Config string
	Labels []string
	Runs   int // rows of this configuration
	OK     int // of which finished
	Failed int
	// Mean[m] and Std[m] are over the finished seeds, for metrics[m]; Std is the sample standard
	// deviation (n-1 in the denominator), NaN for a single seed or when none finished.
	Mean, Std []float64
}

// Groups aggregates rows by configuration, in first-appearance order.
func Groups(rows []Row) []Group {
	var out []Group
	index := map[string]int{}
	values := map[string][][]float64{} // config -> metric -> values of finished seeds
	for _, r := range rows {
		i, ok := index[r.Run.Config]
		if !ok {
			i = len(out)
			index[r.Run.Config] = i
			out = append(out, Group{Config: r.Run.Config, Labels: r.Run.Labels})
			values[r.Run.Config] = make([][]float64, len(metrics))
		}
		g := &out[i]
		g.Runs++
		switch r.Status {
		case "failed":
			g.Failed++
		case "ok":
			g.OK++
			for m, metric := range metrics {
				values[r.Run.Config][m] = append(values[r.Run.Config][m], metric.value(r))
			}
		}
	}
	for i := range out {
		for _, v := range values[out[i].Config] {
			mean, std := meanStd(v)
			out[i].Mean, out[i].Std = append(out[i].Mean, mean), append(out[i].Std, std)
		}
	}
	return out
}

// meanStd returns the mean and the sample standard deviation of v; the std of a single value is NaN
// (undefined, not 0: one seed says nothing about the spread).
func meanStd(v []float64) (mean, std float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) == 1 {
		return mean, math.NaN()
	}
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)-1))
}

// writeReport writes results.csv (one row per run), groups.csv (one row per configuration) and
// results.md (both tables) into s.Dir, and with plots also the PNG plots.
func writeReport(s *Sweep, rows []Row, plots bool) error {
	groups := Groups(rows)
	files := map[string][]byte{
		"results.csv": runsCSV(s, rows),
		"groups.csv":  groupsCSV(s, groups),
		"results.md":  markdown(s, rows, groups),
	}
	for name, body := range files {
		if err := fsutil.WriteFileAtomic(filepath.Join(s.Dir, name), body); err != nil {
			return err
		}
	}
	if plots {
		return writePlots(s, groups)
	}
	return nil
}

func runsCSV(s *Sweep, rows []Row) []byte {
	header := append([]string{"run_id"}, s.Short...)
	header = append(header, "seed", "status")
	for _, m := range metrics {
		header = append(header, m.name)
	}
	table := [][]string{append(header, "error")}
	for _, r := range rows {
		line := append([]string{r.Run.ID}, r.Run.Labels...)
		line = append(line, strconv.FormatUint(r.Run.Seed, 10), r.Status)
		for _, m := range metrics {
			cell := ""
			if r.Summary != nil && r.Status == "ok" {
				cell = strconv.FormatFloat(m.value(r), 'g', 6, 64)
			}
			line = append(line, cell)
		}
		table = append(table, append(line, r.Error))
	}
	return writeCSV(table)
}

func groupsCSV(s *Sweep, groups []Group) []byte {
	header := append([]string{"config"}, s.Short...)
	header = append(header, "runs", "ok", "failed")
	for _, m := range metrics {
		header = append(header, m.name+"_mean", m.name+"_std")
	}
	table := [][]string{header}
	for _, g := range groups {
		line := append([]string{g.Config}, g.Labels...)
		line = append(line, strconv.Itoa(g.Runs), strconv.Itoa(g.OK), strconv.Itoa(g.Failed))
		for m := range metrics {
			line = append(line, csvFloat(g.Mean[m]), csvFloat(g.Std[m]))
		}
		table = append(table, line)
	}
	return writeCSV(table)
}

func csvFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func writeCSV(table [][]string) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.WriteAll(table) // a bytes.Buffer does not fail
	return buf.Bytes()
}

// markdown renders the per-configuration table (mean ± std over seeds) and the per-run table.
func markdown(s *Sweep, rows []Row, groups []Group) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Sweep %s\n\n", s.Name)
	fmt.Fprintf(&b, "Per configuration: mean ± sample std over the finished seeds.\n\n")
	header := append(append([]string{}, s.Short...), "seeds ok", "failed")
	for _, m := range metrics {
		if m.name != "steps" {
			header = append(header, m.name)
		}
	}
	mdRow(&b, header)
	mdRule(&b, len(header))
	for _, g := range groups {
		line := append(append([]string{}, g.Labels...), fmt.Sprintf("%d/%d", g.OK, g.Runs), strconv.Itoa(g.Failed))
		for m, metric := range metrics {
			if metric.name != "steps" {
				line = append(line, meanPM(metric.name, g.Mean[m], g.Std[m]))
			}
		}
		mdRow(&b, line)
	}
	fmt.Fprintf(&b, "\nPer run:\n\n")
	header = append(append([]string{"run"}, "seed", "status"), metricNames()...)
	header = append(header, "error")
	mdRow(&b, header)
	mdRule(&b, len(header))
	for _, r := range rows {
		line := []string{r.Run.ID, strconv.FormatUint(r.Run.Seed, 10), r.Status}
		for _, m := range metrics {
			cell := ""
			if r.Status == "ok" {
				cell = format(m.name, m.value(r))
			}
			line = append(line, cell)
		}
		mdRow(&b, append(line, r.Error))
	}
	return []byte(b.String())
}

func metricNames() []string {
	var out []string
	for _, m := range metrics {
		out = append(out, m.name)
	}
	return out
}

// format prints a metric with the digits that matter for it.
func format(name string, v float64) string {
	switch name {
	case "steps":
		return strconv.Itoa(int(v))
	case "wall_seconds", "tokens_per_sec", "parameters", "state_bytes":
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func meanPM(name string, mean, std float64) string {
	if math.IsNaN(mean) {
		return "-"
	}
	if math.IsNaN(std) {
		return format(name, mean) // a single seed
	}
	return format(name, mean) + " ± " + format(name, std)
}

func mdRow(b *strings.Builder, cells []string) {
	for i, c := range cells {
		cells[i] = strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(c)
	}
	fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
}

func mdRule(b *strings.Builder, n int) {
	fmt.Fprintf(b, "|%s\n", strings.Repeat("---|", n))
}
