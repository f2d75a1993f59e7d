package sweep

import (
	"github.com/engramlx/engram/model"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Grid x zip x seeds expands seed-major, first grid key slowest, with each value applied to its run and
// ids built from short keys and names.
func TestParseExpandsGridZipSeeds(t *testing.T) {
	src := `
name: s
runs_dir: /tmp/r
base: quickstart
set: [train.steps=7]
grid:
  model.layers: [[attention, attention], [swa]]
  train.learning_rate: [0.003, 0.01]
zip:
  model.d_model: [32, 48]
  model.attention.heads: [2, 4]
names: {model.layers: [full, window]}
seeds: [5, 6]
`
	s, err := Parse("dir/s.yaml", []byte(src), []string{"train.batch_size=3"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != filepath.Join("/tmp/r", "s") || len(s.Runs) != 2*2*2*2 {
		t.Fatalf("dir %q, %d runs", s.Dir, len(s.Runs))
	}
	if want := []string{"layers", "learning_rate", "d_model", "heads"}; !reflect.DeepEqual(s.Short, want) {
		t.Errorf("short keys %v, want %v", s.Short, want)
	}
	wantIDs := []string{
		"layers=full,learning_rate=0.003,d_model=32,heads=2,seed=5",
		"layers=full,learning_rate=0.003,d_model=48,heads=4,seed=5",
		"layers=full,learning_rate=0.01,d_model=32,heads=2,seed=5",
	}
	for i, id := range wantIDs {
		if s.Runs[i].ID != id {
			t.Errorf("run %d id %q, want %q", i, s.Runs[i].ID, id)
		}
	}
	last := s.Runs[15]
	if last.ID != "layers=window,learning_rate=0.01,d_model=48,heads=4,seed=6" || last.Config != strings.TrimSuffix(last.ID, ",seed=6") {
		t.Errorf("last run %q config %q", last.ID, last.Config)
	}
	e := last.Exp
	if !reflect.DeepEqual(e.Model.Layers, model.LayerTypes("swa")) || e.Train.LearningRate != 0.01 || e.Model.DModel != 48 ||
		e.Model.Attention.Heads != 4 || e.Seed != 6 || e.Train.Steps != 7 || e.Train.BatchSize != 3 {
		t.Errorf("settings not applied: layers %v lr %g d_model %d heads %d seed %d steps %d batch %d",
			e.Model.Layers, e.Train.LearningRate, e.Model.DModel, e.Model.Attention.Heads, e.Seed, e.Train.Steps, e.Train.BatchSize)
	}
	if e.Name != last.ID || e.RunsDir != s.Dir || last.Dir() != filepath.Join(s.Dir, last.ID) {
		t.Errorf("run lives in %q / %q", e.RunsDir, e.Name)
	}
	// The first run's layer list is its own: applying the second value did not write into it.
	if !reflect.DeepEqual(s.Runs[0].Exp.Model.Layers, model.LayerTypes("attention", "attention")) {
		t.Errorf("first run's layers %v", s.Runs[0].Exp.Model.Layers)
	}
	// Untouched keys keep the base's (quickstart's) values.
	if e.Data.MQAR.SeqLen != 64 || e.Model.Vocab != 64 {
		t.Errorf("base values lost: seq_len %d vocab %d", e.Data.MQAR.SeqLen, e.Model.Vocab)
	}
}

// An inline experiment is decoded over the defaults; without names, list values are joined by "+";
// without seeds, the base's seed is the only one.
func TestParseInlineAndDefaultLabels(t *testing.T) {
	src := `
experiment:
  seed: 9
  model: {vocab: 16, d_model: 16, attention: {heads: 2}}
  data: {mqar: {vocab: 16}}
grid:
  model.layers: [[attention, swa], [swa]]
`
	s, err := Parse("x/abl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "abl" || s.Dir != filepath.Join("runs", "abl") {
		t.Errorf("name %q dir %q", s.Name, s.Dir)
	}
	if len(s.Runs) != 2 || s.Runs[0].ID != "layers=attention+swa,seed=9" || s.Runs[1].ID != "layers=swa,seed=9" {
		t.Fatalf("runs %+v", s.Runs)
	}
	if s.Runs[0].Exp.Train.Steps != 1000 || s.Runs[0].Exp.Model.DModel != 16 {
		t.Errorf("defaults not kept / inline not applied: steps %d d_model %d", s.Runs[0].Exp.Train.Steps, s.Runs[0].Exp.Model.DModel)
	}
}

// Mistakes in the sweep file stop it before anything runs, naming the key (and line where yaml knows it).
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"unknown sweep key", "base: quickstart\nseedz: [1]\n", `line 2: unknown key "seedz"`},
		{"unknown experiment key", "experiment:\n  model: {d_modle: 3}\n", `line 2: unknown key "d_modle"`},
		{"misspelt grid key", "base: quickstart\ngrid: {model.d_modle: [1, 2]}\n", `sw.yaml: line 2: grid.model.d_modle = 1: unknown key "d_modle"`},
		{"misspelt set key", "base: quickstart\nset:\n  - train.steps=5\n  - train.stesp=3\n", `sw.yaml: line 4: set[1] "train.stesp=3": unknown key "stesp"`},
		{"wrong-typed value", "base: quickstart\ngrid: {train.steps: [10, ten]}\n", `line 2: grid.train.steps = ten: train.steps: cannot use string "ten" as int`},
		{"no base", "grid: {train.steps: [1]}\n", "no base experiment"},
		{"both bases", "base: quickstart\nexperiment: {seed: 2}\n", "not both"},
		{"missing base", "base: nope/missing.yaml\n", "base: config file nope/missing.yaml"},
		{"grid not a list", "base: quickstart\ngrid: {train.steps: 10}\n", "line 2: grid.train.steps must be a non-empty list"},
		{"zip lengths", "base: quickstart\nzip: {train.steps: [1, 2], train.batch_size: [1]}\n", "zip.train.batch_size has 1 values but zip.train.steps has 2"},
		{"names count", "base: quickstart\ngrid: {train.steps: [1, 2]}\nnames: {train.steps: [a]}\n", "names.train.steps has 1 names for 2 values"},
		{"names of unswept key", "base: quickstart\nnames: {train.steps: [a]}\n", "train.steps is not a swept key"},
		{"swept twice", "base: quickstart\ngrid: {train.steps: [1]}\nzip: {train.steps: [2]}\n", "train.steps is swept twice"},
		{"duplicate seeds", "base: quickstart\nseeds: [1, 2, 1]\n", "seeds[2] = 1 appears twice"},
		{"colliding ids", "base: quickstart\ngrid: {name: [a/b, a_b]}\n", `two runs share the id "name=a_b,seed=1"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("sw.yaml", []byte(c.src), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "sw.yaml: ") {
				t.Errorf("got %v, want an error naming sw.yaml and containing %q", err, c.want)
			}
		})
	}
}

// A base path is read relative to the sweep file.
func TestBaseBesideSweepFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("name: b\ntrain: {steps: 11, warmup_steps: 1}\n"), 0o644)
	file := filepath.Join(dir, "s.yaml")
	os.WriteFile(file, []byte("base: b.yaml\nseeds: [4]\n"), 0o644)
	s, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Runs) != 1 || s.Runs[0].ID != "seed=4" || s.Runs[0].Exp.Train.Steps != 11 {
		t.Errorf("runs %+v", s.Runs)
	}
}

// Every sweep in configs/sweeps/ loads strictly and each of its runs is a valid experiment.
func TestEverySweepFileLoads(t *testing.T) {
	files, _ := filepath.Glob("../configs/sweeps/*.yaml")
	if len(files) == 0 {
		t.Fatal("no sweep files in configs/sweeps/")
	}
	for _, f := range files {
		s, err := Load(f, nil)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, r := range s.Runs {
			if r.Invalid != nil {
				t.Errorf("%s: run %s: %v", f, r.ID, r.Invalid)
			}
		}
	}
}

// A sweep shortened below its warm-up (-set train.steps=2 on a base with 25 warm-up steps) clamps each
// run's warm-up with a notice, as train -set does, instead of failing every run.
func TestShortSweepClampsWarmup(t *testing.T) {
	s, err := Parse("sw.yaml", []byte("base: quickstart\nset: [train.warmup_steps=25]\ngrid: {model.d_model: [16, 32]}\n"), []string{"train.steps=2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Runs {
		if r.Invalid != nil || r.Exp.Train.WarmupSteps != 2 || len(r.Exp.Notices) != 1 || !strings.Contains(r.Exp.Notices[0], "warm-up clamped to 2") {
			t.Errorf("%s: invalid %v, warmup %d, notices %q", r.ID, r.Invalid, r.Exp.Train.WarmupSteps, r.Exp.Notices)
		}
	}
}

// more_seeds adds seeds only where a swept key has the named value, after every configuration's own
// seeds; a condition naming no swept key or no value is an error.
func TestMoreSeeds(t *testing.T) {
	src := `
name: s
base: quickstart
grid:
  model.layers: [[attention], [swa]]
zip:
  model.d_model: [32, 48]
names: {model.layers: [full, window]}
seeds: [1]
more_seeds: {model.d_model=48: [2, 3]}
`
	s, err := Parse("s.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range s.Runs {
		ids = append(ids, r.ID)
	}
	want := []string{"layers=full,d_model=32,seed=1", "layers=full,d_model=48,seed=1", "layers=window,d_model=32,seed=1",
		"layers=window,d_model=48,seed=1", "layers=full,d_model=48,seed=2", "layers=window,d_model=48,seed=2",
		"layers=full,d_model=48,seed=3", "layers=window,d_model=48,seed=3"}
	if !reflect.DeepEqual(ids, want) || s.Runs[7].Exp.Seed != 3 || s.Runs[7].Config != "layers=window,d_model=48" {
		t.Fatalf("runs %v, want %v", ids, want)
	}
	for cond, msg := range map[string]string{"model.heads=2": "names no swept key", "model.d_model=64": "matches no value"} {
		bad := strings.Replace(src, "model.d_model=48", cond, 1)
		if _, err := Parse("s.yaml", []byte(bad), nil); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("more_seeds %s: got %v, want %q", cond, err, msg)
		}
	}
}
