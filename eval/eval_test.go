package eval

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

func result(targets, argmax string) RowResult {
	r := RowResult{}
	for i := range targets {
		r.Targets = append(r.Targets, int32(targets[i]))
		r.Argmax = append(r.Argmax, int32(argmax[i]))
	}
	return r
}

// Scores: passkey is exact match, needle is the fraction of values recalled, MQAR the fraction of
// queries.
func TestScores(t *testing.T) {
	if got := (Passkey{}).Score(result("12345", "12345")); got != 1 {
		t.Errorf("passkey all right: %g, want 1", got)
	}
	if got := (Passkey{}).Score(result("12345", "12344")); got != 0 {
		t.Errorf("passkey one digit wrong: %g, want 0", got)
	}
	n := needle{name: "needle_multivalue", template: data.Needle{Values: 3}}
	if got := n.Score(result("1234567, 7654321, 1111111", "1234567? 7650321, 1111111")); math.Abs(got-2.0/3) > 1e-12 {
		t.Errorf("needle with one of three values wrong: %g, want 2/3", got)
	}
	m := &mqar{}
	if got := m.Score(RowResult{Targets: []int32{5, 6, 7, 8}, Argmax: []int32{5, 0, 7, 0}}); got != 0.5 {
		t.Errorf("mqar 2 of 4 queries: %g, want 0.5", got)
	}
}

// argmaxLogProb is the log-softmax of the target, stable for large logits.
func TestArgmaxLogProb(t *testing.T) {
	logits := []float64{1000, 1001, 999}
	arg, logp := argmaxLogProb(logits, 2)
	want := -2 - math.Log(1+math.Exp(-1)+math.Exp(-2))
	if arg != 1 || math.Abs(logp-want) > 1e-12 {
		t.Errorf("got argmax %d, log p %.15g; want 1, %.15g", arg, logp, want)
	}
}

// The bits per token of a streamed perplexity cell equal the cross-entropy of one graph over the same
// window, computed independently from its logits.
func TestPerplexityMatchesSingleGraph(t *testing.T) {
	m := tinyModel(t, "swa")
	store := newStore(3)
	const length = 96
	b := randomBatch(2, length, m.Config.Vocab, 5)
	for r := 0; r < 2; r++ { // next-token labels, the last position unlabelled
		ids, labels := b.Row(r)
		copy(labels, ids[1:])
		labels[length-1] = data.Ignore
	}
	s, err := NewStreamer(m, m.Config.Vocab, store, lt.Backend(), 40)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	task := &perplexity{files: "test", rows: &data.Rows{IDs: b.InputIDs, Labels: b.Labels, Offsets: []int64{0, length, 2 * length}}}
	cells, err := Run(s, "tiny", task, Grid{Lengths: []int{length}, Samples: 2, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	single := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, ids *Node) *Node {
		h, _ := m.Hidden(scope, ids, nil)
		return m.Logits(scope, h)
	})
	defer single.Finalize()
	logits := lt.Floats(single.MustCall(tensors.FromFlatDataAndDimensions(b.InputIDs, 2, length))[0])
	vocab, nll, count := m.Config.Vocab, 0.0, 0
	for i, label := range b.Labels {
		if label == data.Ignore {
			continue
		}
		row := logits[i*vocab : (i+1)*vocab]
		z := 0.0
		for _, l := range row {
			z += math.Exp(l)
		}
		nll += math.Log(z) - row[label]
		count++
	}
	want := nll / float64(count) / math.Ln2
	if c := cells[0]; c.Rows != 2 || math.Abs(c.BitsPerToken-want) > 1e-9*want {
		t.Fatalf("streamed perplexity cell %+v: bits per token %.12g, want %.12g over 2 rows", c, c.BitsPerToken, want)
	}
}

// MQAR over an Arrow file reports one cell per (length, pairs) group of the file, equal to the cells of
// the same rows generated in memory.
func TestMQARFromFileEqualsGenerated(t *testing.T) {
	m := tinyModel(t, "swa")
	s, err := NewStreamer(m, m.Config.Vocab, newStore(2), lt.Backend(), 32)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	template := data.MQAR{Vocab: 32, PowerA: 0.01}
	file := filepath.Join(t.TempDir(), "mqar.arrow")
	rows := data.NewRows()
	for _, p := range []Point{{Length: 48, At: 4}, {Length: 64, At: 2}} {
		task := template
		task.SeqLen, task.NumPairs = p.Length, int(p.At)
		src, err := data.NewTaskSource(task, 3, 9, SplitTest)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := src.BatchAt(0)
		rows.AppendBatch(b)
	}
	if err := data.WriteFile(file, data.OutArrowFile, rows); err != nil {
		t.Fatal(err)
	}
	// The run's own MQAR settings do not limit file rows (a run trained on files keeps the default
	// data.mqar section, vocabulary 256); the file's ids are checked against the model instead.
	fromFile, err := NewTask("mqar", Options{Vocab: 32, MQAR: data.MQAR{Vocab: 256}, Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Run(s, "tiny", fromFile, Grid{Lengths: []int{999}, Samples: 3, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	generated, _ := NewTask("mqar", Options{Vocab: 32, MQAR: template, Pairs: []int{2, 4}})
	want, err := Run(s, "tiny", generated, Grid{Lengths: []int{48, 64}, Samples: 3, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantByPoint := map[Point]Cell{}
	for _, c := range want {
		wantByPoint[Point{c.Length, c.At}] = c
	}
	if len(got) != 2 {
		t.Fatalf("file cells %+v: want the 2 groups (48, 4) and (64, 2)", got)
	}
	for _, c := range got {
		w := wantByPoint[Point{c.Length, c.At}]
		if c.Rows != 3 || c.Accuracy != w.Accuracy || math.Abs(c.BitsPerToken-w.BitsPerToken) > 1e-12 {
			t.Errorf("file cell (%d, %g pairs): rows %d acc %g bits %g; generated: rows %d acc %g bits %g",
				c.Length, c.At, c.Rows, c.Accuracy, c.BitsPerToken, w.Rows, w.Accuracy, w.BitsPerToken)
		}
	}
}

func sampleCells() []Cell {
	return []Cell{
		{Run: "r", Task: "passkey", Length: 512, Axis: "depth", At: 0, Rows: 4, Accuracy: 1, TokenAccuracy: 1, BitsPerToken: 0.5, Status: "ok"},
		{Run: "r", Task: "passkey", Length: 512, Axis: "depth", At: 1, Rows: 4, Accuracy: 0.25, TokenAccuracy: 0.5, BitsPerToken: 1.5, Status: "ok"},
		{Run: "r", Task: "passkey", Length: 8192, Axis: "depth", At: 0, Status: "exceeds cache"},
		{Run: "r", Task: "passkey", Length: 8192, Axis: "depth", At: 1, Status: "exceeds cache"},
	}
}

// The Markdown table pivots depth x length, marks cells beyond the cache and averages bits per token.
func TestMarkdownAndCSV(t *testing.T) {
	want := "passkey on r: accuracy (%) by context length and depth\n\n" +
		"| depth | 512 | 8K |\n|---|---:|---:|\n" +
		"| 0 | 100.0 | exceeds cache |\n| 1 | 25.0 | exceeds cache |\n\n" +
		"| context length | 512 | 8K |\n|---|---:|---:|\n| bits per token (mean over rows) | 1.000 | - |\n"
	if got := string(Markdown(sampleCells())); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
	csv := string(CSV(sampleCells()))
	if !strings.Contains(csv, "r,passkey,512,depth,1,4,0.2500,0.5000,1.5000,ok,") ||
		!strings.Contains(csv, "r,passkey,8192,depth,0,,,,,exceeds cache,") {
		t.Errorf("csv:\n%s", csv)
	}
}

// The heatmap and the curve are valid PNGs; the heatmap's palette gets lighter with accuracy (readable
// in greyscale and for the colour-blind: no red-green).
func TestPlots(t *testing.T) {
	colours := accuracyPalette(5).Colors()
	lightness := func(c color.Color) float64 {
		r, g, b, _ := c.RGBA()
		return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
	}
	for i := 1; i < len(colours); i++ {
		if !(lightness(colours[i]) > lightness(colours[i-1])) {
			t.Errorf("palette step %d: lightness %g after %g, want rising", i, lightness(colours[i]), lightness(colours[i-1]))
		}
	}
	heat, err := Heatmap(sampleCells(), AccuracyMetric, "test")
	if err != nil {
		t.Fatal(err)
	}
	curve, err := Curve(map[string][]Cell{"a": sampleCells(), "b": sampleCells()[:2]}, TokenAccuracyMetric, "test")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"heatmap": heat, "curve": curve} {
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s: not a usable PNG: %v", name, err)
		}
	}
	if got := meanByLength(sampleCells(), AccuracyMetric); len(got) != 1 || got[0].X != 512 || got[0].Y != 0.625 {
		t.Errorf("accuracy curve points %v: want one point (512, 0.625)", got)
	}
	if got := meanByLength(sampleCells(), TokenAccuracyMetric); len(got) != 1 || got[0].Y != 0.75 {
		t.Errorf("token accuracy curve points %v: want one point (512, 0.75)", got)
	}
}

// Every registered task builds (with a file where one is needed) and names an axis.
func TestTaskNames(t *testing.T) {
	for _, name := range TaskNames() {
		_, err := NewTask(name, Options{Vocab: data.ByteVocab, Pairs: []int{4}})
		if name == "perplexity" {
			if err == nil || !strings.Contains(err.Error(), "file") {
				t.Errorf("perplexity without a file: %v, want an error naming the file", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewTask("nope", Options{}); err == nil || !strings.Contains(err.Error(), "passkey") {
		t.Errorf("unknown task: %v, want an error listing the known tasks", err)
	}
}

// Streamed passkey rows equal data.Passkey's rows (ids and labels), at the shortest valid length and
// longer, at several depths and seeds, read in uneven segments.
func TestPasskeyStreamEqualsGenerator(t *testing.T) {
	for _, length := range []int{249, 250, 700, 4099} {
		for _, depth := range []float64{0, 0.37, 1} {
			for _, seed := range []uint64{1, 8} {
				inputs, _, err := generated(data.Passkey{SeqLen: length, Depth: depth}, 3, seed)
				if err != nil {
					t.Fatal(err)
				}
				want := inputs[0].(BatchInput)
				lazy, err := newPasskeyInput(length, depth, 3, seed)
				if err != nil {
					t.Fatal(err)
				}
				for from := 0; from < length; from += 100 {
					n := min(100, length-from)
					ids, labels := make([]int32, 3*n), make([]int32, 3*n)
					wantIDs, wantLabels := make([]int32, 3*n), make([]int32, 3*n)
					if err := lazy.Read(from, n, ids, labels); err != nil {
						t.Fatal(err)
					}
					_ = want.Read(from, n, wantIDs, wantLabels)
					for i := range ids {
						if ids[i] != wantIDs[i] || labels[i] != wantLabels[i] {
							t.Fatalf("length %d depth %g seed %d: row %d position %d: (id %d, label %d), generator (%d, %d)",
								length, depth, seed, i/n, from+i%n, ids[i], labels[i], wantIDs[i], wantLabels[i])
						}
					}
				}
			}
		}
	}
}

// ReadCSV reads back what CSV wrote, and names the line and column of a bad number.
func TestReadCSVRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passkey.csv")
	if err := WriteTables(strings.TrimSuffix(file, ".csv"), sampleCells()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range sampleCells() {
		if got[i] != want {
			t.Errorf("cell %d: %+v, want %+v", i, got[i], want)
		}
	}
	bad := strings.Replace(string(CSV(sampleCells())), ",0.2500,", ",x,", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCSV(file); err == nil || !strings.Contains(err.Error(), "line 3, column accuracy") {
		t.Errorf("bad number: %v, want an error naming line 3, column accuracy", err)
	}
}
