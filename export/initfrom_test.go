package export

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/train"
)

// A run started with train.init_from = an export computes, before it has learned anything, exactly what
// the exported run computes: the same eval loss on the same eval rows (one step at a negligible learning
// rate), where the same run from its own random initialisation does not. The export's RMT memory comes
// along. An export of another architecture, and a run directory in place of an export, are refused in
// one line.
func TestInitFromExport(t *testing.T) {
	src := trainedRMT(t, "gated_deltanet", "")
	out := t.TempDir()
	if _, err := Weights(mustFromRun(t, src), out, "float32", "tiny", 3); err != nil {
		t.Fatal(err)
	}
	var want train.Summary
	body, err := os.ReadFile(filepath.Join(src.Dir, "summary.json"))
	if err == nil {
		err = json.Unmarshal(body, &want)
	}
	if err != nil {
		t.Fatal(err)
	}
	started := evalLossAfterStillStep(t, src, out)
	fresh := evalLossAfterStillStep(t, src, "")
	t.Logf("eval loss: exported run %.9g, started from its export %.9g, from a random init %.9g", want.EvalLoss, started, fresh)
	if started != want.EvalLoss {
		t.Errorf("a run started from the export scores %.9g, the exported run %.9g", started, want.EvalLoss)
	}
	if fresh == want.EvalLoss {
		t.Errorf("a randomly initialised run scores the same as the exported one (%.9g): the test cannot tell them apart", fresh)
	}

	other := src.Exp
	other.Name, other.RunsDir = "other", t.TempDir()
	other.Model.DModel = 16
	other.Train.InitFrom = out
	if _, err := train.NewRunner(other, train.Options{Log: discard{}}); err == nil || !strings.Contains(err.Error(), "model.d_model: 8 -> 16") {
		t.Errorf("another architecture: got %v, want an error naming d_model", err)
	}
	other = src.Exp
	other.Name, other.RunsDir = "other", t.TempDir()
	other.Train.InitFrom = src.Dir
	if _, err := train.NewRunner(other, train.Options{Log: discard{}}); err == nil || !strings.Contains(err.Error(), "is a run directory: export it first") {
		t.Errorf("a run directory: got %v", err)
	}
}

// evalLossAfterStillStep runs r's experiment in a new directory, from the export initFrom ("" = its
// random initialisation), for one step at a negligible learning rate, and returns its eval loss.
func evalLossAfterStillStep(t *testing.T, r *train.Runner, initFrom string) float64 {
	t.Helper()
	exp := r.Exp
	exp.Name, exp.RunsDir = "still", t.TempDir()
	exp.Train.Steps, exp.Train.WarmupSteps, exp.Train.LearningRate, exp.Train.InitFrom = 1, 0, 1e-30, initFrom
	s, err := train.Run(context.Background(), exp, train.Options{Log: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	return s.EvalLoss
}
