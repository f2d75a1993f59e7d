package checkpoints_test

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// updateLegacy rewrites testdata/v0.28.8/logits.json. It was run once, on GoMLX v0.28.8, when the fixture
// was made; running it on a later version would defeat the test.
var updateLegacy = flag.Bool("update_legacy_logits", false, "rewrite the logits of the v0.28.8 fixture (only on v0.28.8)")

// legacyDir holds a 20-step quickstart run (d_model 16) trained and exported with GoMLX v0.28.8 /
// compute v0.1.6 on Go 1.26: its checkpoint (ckpt-*), config.yaml and export/.
const legacyDir = "testdata/v0.28.8"

type legacyLogits struct {
	GoMLX  string    `json:"gomlx"`
	Shape  []int     `json:"shape"`
	Logits []float64 `json:"logits"`
}

// copyTree copies the regular files under from into to (checkpoints.Open writes a staging directory
// next to the checkpoints, so the fixture is opened from a copy).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), body, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func legacyModel(t *testing.T) *model.Model {
	t.Helper()
	exp, err := configs.Load(filepath.Join(legacyDir, "config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(exp.Model)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func legacyLogitsOf(t *testing.T, m *model.Model, store *mlmodel.Store) *tensors.Tensor {
	t.Helper()
	exec := streamExec(t, m, store)
	defer exec.Finalize()
	logits, _ := call(t, exec, ids(2, 64, 5), nil)
	return logits
}

// A checkpoint and an export written by GoMLX v0.28.8 load in this build and give the logits v0.28.8
// computed from them (float32; the backends' kernels differ, so equality is to 1e-5 relative).
func TestV0288CheckpointAndExportLoad(t *testing.T) {
	m := legacyModel(t)

	runDir := t.TempDir()
	copyTree(t, legacyDir, runDir)
	store := mlmodel.NewStore()
	ckpt, err := checkpoints.Open(store, runDir, 1)
	if err != nil {
		t.Fatalf("opening the v0.28.8 checkpoint: %v", err)
	}
	if info, ok := ckpt.Loaded(); !ok || info.Step != 20 {
		t.Fatalf("loaded %+v (ok %v), want the step-20 checkpoint", info, ok)
	}
	fromCheckpoint := legacyLogitsOf(t, m, store)

	imp, err := checkpoints.Import(filepath.Join(runDir, "export"))
	if err != nil {
		t.Fatalf("importing the v0.28.8 export: %v", err)
	}
	imported, err := imp.NewStore(m.DType)
	if err != nil {
		t.Fatal(err)
	}
	fromExport := legacyLogitsOf(t, m, imported)

	file := filepath.Join(legacyDir, "logits.json")
	if *updateLegacy {
		if checkpoints.GoMLXVersion != "v0.28.8" {
			t.Fatalf("-update_legacy_logits on GoMLX %s: the fixture's logits must come from v0.28.8", checkpoints.GoMLXVersion)
		}
		body, _ := json.Marshal(legacyLogits{GoMLX: checkpoints.GoMLXVersion, Shape: fromCheckpoint.Shape().Dimensions, Logits: lt.Floats(fromCheckpoint)})
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want legacyLogits
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	if want.GoMLX != "v0.28.8" {
		t.Fatalf("%s was written by GoMLX %s, want v0.28.8", file, want.GoMLX)
	}
	for what, got := range map[string]*tensors.Tensor{"checkpoint": fromCheckpoint, "export": fromExport} {
		g := lt.Floats(got)
		if len(g) != len(want.Logits) {
			t.Fatalf("%s: %d logits, want %d", what, len(g), len(want.Logits))
		}
		var diff, norm float64
		for i := range g {
			diff += (g[i] - want.Logits[i]) * (g[i] - want.Logits[i])
			norm += want.Logits[i] * want.Logits[i]
		}
		if rel := math.Sqrt(diff / norm); !(rel <= 1e-5) {
			t.Errorf("%s of v0.28.8: logits differ from v0.28.8's by rel L2 %.3g", what, rel)
		} else {
			t.Logf("%s of v0.28.8: logits rel L2 %.2g from v0.28.8's", what, rel)
		}
	}
}
