package sweep

import (
	"math"
	"strings"
	"testing"

	"github.com/engramlx/engram/train"
)

// Groups take mean and sample std over the finished seeds only, counting failures apart.
func TestGroupsMeanStd(t *testing.T) {
	a := Run{ID: "m=a,seed=1", Config: "m=a", Labels: []string{"a"}, Seed: 1}
	b := Run{ID: "m=b,seed=1", Config: "m=b", Labels: []string{"b"}, Seed: 1}
	sum := func(acc, loss float64) *train.Summary {
		return &train.Summary{EvalAccuracy: acc, EvalLoss: loss, Steps: 10}
	}
	rows := []Row{
		{Run: &a, Status: "ok", Summary: sum(0.5, 2)},
		{Run: &b, Status: "ok", Summary: sum(0.25, 1)},
		{Run: &a, Status: "ok", Summary: sum(0.7, 4)},
		{Run: &a, Status: "failed", Error: "boom"},
		{Run: &a, Status: "ok", Summary: sum(0.9, 6)},
		{Run: &b, Status: "pending"},
	}
	g := Groups(rows)
	if len(g) != 2 || g[0].Config != "m=a" || g[1].Config != "m=b" {
		t.Fatalf("groups %+v", g)
	}
	acc, loss := metricIndex("eval_accuracy"), metricIndex("eval_loss")
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	if g[0].Runs != 4 || g[0].OK != 3 || g[0].Failed != 1 || !near(g[0].Mean[acc], 0.7) || !near(g[0].Std[acc], 0.2) ||
		!near(g[0].Mean[loss], 4) || !near(g[0].Std[loss], 2) {
		t.Errorf("group a: %+v", g[0])
	}
	if g[1].Runs != 2 || g[1].OK != 1 || !near(g[1].Mean[acc], 0.25) || !math.IsNaN(g[1].Std[acc]) ||
		meanPM("eval_accuracy", g[1].Mean[acc], g[1].Std[acc]) != "0.2500" {
		t.Errorf("group b (one seed: no std): %+v", g[1])
	}
	md := string(markdown(&Sweep{Name: "x", Short: []string{"m"}}, rows, g))
	for _, want := range []string{"| a | 3/4 | 1 | 0.7000 ± 0.2000 | 4.0000 ± 2.0000 |", "| b | 1/2 | 0 | 0.2500 | 1.0000 |", "| m=a,seed=1 | 1 | failed |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if g := Groups(rows[5:]); !math.IsNaN(g[0].Mean[acc]) || meanPM("eval_accuracy", g[0].Mean[acc], g[0].Std[acc]) != "-" {
		t.Errorf("a configuration with no finished seed: %+v", g[0])
	}
}

// Error bars stay inside the metric's range: an accuracy of 0.98 +- 0.05 reaches 1, not 1.03.
func TestErrorBarsClipped(t *testing.T) {
	p := points{x: []float64{0}, y: []float64{0.98}, err: []float64{0.05}, lo: 0, hi: 1}
	if low, high := p.YError(0); math.Abs(low-0.05) > 1e-12 || math.Abs(high-0.02) > 1e-12 {
		t.Errorf("error bar (-%g, +%g), want (-0.05, +0.02)", low, high)
	}
}
