package checkpoints_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// exportModel builds cfg's model, runs it once on ids (creating its variables) and exports it to dir.
func exportModel(t *testing.T, cfg model.Config, dir, dtype string, in *tensors.Tensor) (*tensors.Tensor, *mlmodel.Store) {
	t.Helper()
	m, store := newModel(t, cfg)
	exec := streamExec(t, m, store)
	defer exec.Finalize()
	logits, _ := call(t, exec, in, nil)
	_, err := checkpoints.Export(dir, store, checkpoints.ExportOptions{DType: dtype, Architecture: cfg,
		Tokenizer: checkpoints.Tokenizer{Type: "ids", Vocab: cfg.Vocab}, Source: checkpoints.Source{Run: "test", Step: 7}})
	if err != nil {
		t.Fatal(err)
	}
	return logits, store
}

// importModel imports dir into a fresh model and store (as an evaluation process would) and returns the
// logits on ids, after checking the export covered exactly the model's variables.
func importModel(t *testing.T, dir string, in *tensors.Tensor) (*tensors.Tensor, model.Config) {
	t.Helper()
	imp, err := checkpoints.Import(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultConfig() // decoded over the defaults, as export.Load does
	if err := imp.DecodeArchitecture(&cfg); err != nil {
		t.Fatal(err)
	}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := imp.NewStore(m.DType)
	if err != nil {
		t.Fatal(err)
	}
	exec := streamExec(t, m, store)
	defer exec.Finalize()
	logits, _ := call(t, exec, in, nil)
	if err := imp.Check(store); err != nil {
		t.Fatal(err)
	}
	return logits, cfg
}

// Export -> import -> identical logits, for every mixer type the model registry knows.
func TestExportImportRoundTripEveryMixer(t *testing.T) {
	for _, typ := range model.Types() {
		t.Run(typ, func(t *testing.T) {
			cfg, dir, in := tinyConfig(typ), t.TempDir(), ids(2, 6, 3)
			want, store := exportModel(t, cfg, dir, "", in)
			got, cfg2 := importModel(t, dir, in)
			if !reflect.DeepEqual(cfg, cfg2) {
				t.Fatalf("architecture changed in the round trip: %v", configs.Diff(cfg, cfg2, "model"))
			}
			assertIdentical(t, typ+" logits after export/import", got, want)
			// The file holds every trainable variable under its mapped name, per the specification reader.
			body, err := os.ReadFile(filepath.Join(dir, checkpoints.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			tensorsInFile, md, _ := specRead(t, body)
			count := 0
			for v := range store.IterVariables() {
				if !v.Trainable {
					continue
				}
				count++
				got, ok := tensorsInFile[checkpoints.TensorName(v.Path())]
				if !ok || got.DType != "F32" || !reflect.DeepEqual(got.Shape, v.Shape().Dimensions) {
					t.Fatalf("variable %s: file has %+v", v.Path(), got)
				}
			}
			if count != len(tensorsInFile) || !strings.Contains(md["scopes"], `"layer_0.norm_mixer.weight":"/layer_0/norm_mixer/weight"`) {
				t.Fatalf("%d tensors in the file for %d variables; metadata %v", len(tensorsInFile), count, md)
			}
		})
	}
}

func TestExportManifest(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig("attention")
	exportModel(t, cfg, dir, "", ids(1, 4, 1))
	var man map[string]any
	body, _ := os.ReadFile(filepath.Join(dir, checkpoints.ConfigFile))
	if err := json.Unmarshal(body, &man); err != nil {
		t.Fatal(err)
	}
	arch := man["architecture"].(map[string]any)
	if man["format"] != "engram-export" || man["gomlx_version"] != checkpoints.GoMLXVersion || man["engram_version"] == "" ||
		arch["d_model"] != 16.0 || arch["attention"].(map[string]any)["max_context"] != 24.0 ||
		man["tokenizer"].(map[string]any)["type"] != "ids" || man["source"].(map[string]any)["step"] != 7.0 ||
		man["tensors"].(map[string]any)["head.weight"] != "/head/weight" {
		t.Fatalf("config.json:\n%s", body)
	}
}

// bfloat16 exports round each weight to nearest-even; logits move by about bfloat16's precision.
func TestExportBFloat16(t *testing.T) {
	cfg, dir, in := tinyConfig("swa"), t.TempDir(), ids(2, 6, 5)
	want, store := exportModel(t, cfg, dir, "bfloat16", in)
	body, _ := os.ReadFile(filepath.Join(dir, checkpoints.WeightsFile))
	inFile, _, _ := specRead(t, body)
	for v := range store.IterVariables() {
		if !v.Trainable {
			continue
		}
		x := inFile[checkpoints.TensorName(v.Path())]
		for i, w := range lt.Floats(v.MustValue()) {
			got := binary.LittleEndian.Uint16(x.Data[2*i:])
			if wantBits := nearestBFloat16(float32(w)); x.DType != "BF16" || got != wantBits {
				t.Fatalf("%s[%d] = %g stored as %#04x, want %#04x", v.Path(), i, w, got, wantBits)
			}
		}
	}
	got, _ := importModel(t, dir, in)
	if err := lt.RelRMS(lt.Floats(got), lt.Floats(want)); !(err > 0 && err < 0.02) {
		t.Fatalf("bfloat16 logits differ from float32 ones by %.3g (relative RMS): want small but nonzero", err)
	}
}

// nearestBFloat16 picks, of the two bfloat16 values around f, the nearer one (the even one on a tie),
// by comparing distances in float64.
func nearestBFloat16(f float32) uint16 {
	down := uint16(math.Float32bits(f) >> 16)
	up := down + 1
	widen := func(b uint16) float64 { return float64(math.Float32frombits(uint32(b) << 16)) }
	dDown, dUp := math.Abs(float64(f)-widen(down)), math.Abs(widen(up)-float64(f))
	if dDown < dUp || (dDown == dUp && down%2 == 0) {
		return down
	}
	return up
}

// A float64 model exported as float64 comes back bit for bit.
func TestExportFloat64(t *testing.T) {
	cfg, dir, in := tinyConfig("attention"), t.TempDir(), ids(1, 5, 2)
	cfg.DType = "float64"
	want, _ := exportModel(t, cfg, dir, "float64", in)
	got, _ := importModel(t, dir, in)
	assertIdentical(t, "float64 logits", got, want)
}

func TestImportErrors(t *testing.T) {
	cfg, in := tinyConfig("attention"), ids(1, 4, 1)
	fresh := func() string {
		dir := t.TempDir()
		exportModel(t, cfg, dir, "", in)
		return dir
	}
	weights := func(dir string) string { return filepath.Join(dir, checkpoints.WeightsFile) }
	config := func(dir string) string { return filepath.Join(dir, checkpoints.ConfigFile) }
	for _, c := range []struct {
		name   string
		damage func(dir string) error
		file   func(dir string) string
		want   string
	}{
		{"truncated weights", func(d string) error { return os.Truncate(weights(d), 100) }, weights, "does not match the size"},
		{"flipped byte", func(d string) error { return flipByteIn(weights(d)) }, weights, "SHA-256"},
		{"missing weights", func(d string) error { return os.Remove(weights(d)) }, weights, "no such file"},
		{"config not json", func(d string) error { return os.WriteFile(config(d), []byte("{\"format\": "), 0o644) }, config, "unexpected end"},
		{"wrong format", func(d string) error { return os.WriteFile(config(d), []byte(`{"format": "other"}`), 0o644) }, config, `format "other"`},
		{"newer format", func(d string) error { return editManifest(d, "format_version", 2) }, config, "format_version 2"},
		{"unmapped tensor", func(d string) error {
			return editManifest(d, "tensors", map[string]string{"head.weight": "/head/weight"})
		}, config, "has no scope path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := fresh()
			if err := c.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := checkpoints.Import(dir)
			if err == nil || !strings.Contains(err.Error(), c.file(dir)) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, c.file(dir), c.want)
			}
		})
	}
}

// An export imported into a different architecture is reported by Check, naming the variables.
func TestImportCheckNamesMismatchedVariables(t *testing.T) {
	dir, in := t.TempDir(), ids(1, 4, 1)
	exportModel(t, tinyConfig("attention"), dir, "", in)
	imp, err := checkpoints.Import(dir)
	if err != nil {
		t.Fatal(err)
	}
	noMLP, twoLayers := tinyConfig("attention"), tinyConfig("attention")
	noMLP.MLPHidden = -1
	twoLayers.Layers = model.LayerTypes("attention", "attention")
	for _, c := range []struct {
		cfg  model.Config
		want string
	}{
		{noMLP, "exported tensor layer_0.mlp.up.weight (/layer_0/mlp/up/weight) was not used by the model"},
		{twoLayers, "variable /layer_1/attention/q/weight is not in the export (it was initialised randomly)"},
	} {
		m, _ := model.New(c.cfg)
		store, err := imp.NewStore(m.DType)
		if err != nil {
			t.Fatal(err)
		}
		exec := streamExec(t, m, store)
		call(t, exec, in, nil)
		exec.Finalize()
		err = imp.Check(store)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("got %v, want %q", err, c.want)
		}
	}
}

func flipByteIn(path string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body[len(body)-3] ^= 1
	return os.WriteFile(path, body, 0o644)
}

func editManifest(dir, key string, value any) error {
	file := filepath.Join(dir, checkpoints.ConfigFile)
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var man map[string]any
	if err := json.Unmarshal(body, &man); err != nil {
		return err
	}
	man[key] = value
	body, _ = json.Marshal(man)
	return os.WriteFile(file, body, 0o644)
}
