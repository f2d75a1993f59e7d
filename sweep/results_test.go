package sweep

import (
	"math"
	"strings"
	"testing"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
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

// StateBytes counts 4 bytes per state element from the mixers' StateSpecs: gated DeltaNet's S (heads x
// d_k x d_v) and its three conv caches per layer, whatever the row length; attention's KV cache at the
// run's row length (64 more positions: 64 x (K + V) x d_model more elements per layer).
func TestStateBytes(t *testing.T) {
	exp := configs.Default()
	exp.Model.DModel, exp.Model.Vocab = 128, 8192
	exp.Model.Layers = model.LayerTypes("gated_deltanet", "gated_deltanet")
	exp.Model.DeltaNet.Heads, exp.Model.DeltaNet.HeadDimK, exp.Model.DeltaNet.ExpandV, exp.Model.DeltaNet.ConvSize = 2, 64, 1, 4
	exp.Data.MQAR = data.MQAR{Vocab: 8192, SeqLen: 64, NumPairs: 4, PowerA: 0.01}
	perLayer := 2*64*64 + 3*3*128 // S, then conv_q, conv_k, conv_v: 3 positions x 128 channels each
	if got, want := StateBytes(exp), 4*2*perLayer; got != want {
		t.Errorf("gated_deltanet: %d bytes, want %d", got, want)
	}
	exp.Model.Layers = model.LayerTypes("attention", "attention")
	short := StateBytes(exp)
	exp.Data.MQAR.SeqLen = 128
	if got, want := StateBytes(exp)-short, 4*2*64*2*128; got != want {
		t.Errorf("attention at 128 minus at 64 tokens: %d bytes, want %d", got, want)
	}
}

// The state-bytes axis has labels even over less than a decade: 1, 2 and 5 times the powers of ten.
func TestByteTicks(t *testing.T) {
	var labels []string
	for _, tick := range (byteTicks{}).Ticks(150e3, 900e3) {
		labels = append(labels, tick.Label)
	}
	if got := strings.Join(labels, " "); got != "200K 500K" {
		t.Errorf("ticks over [150K, 900K]: %q, want \"200K 500K\"", got)
	}
}
