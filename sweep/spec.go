package sweep

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/engramlx/engram/configs"
	"go.yaml.in/yaml/v3"
)

// File is a sweep YAML as written (see the package doc for the format).
type File struct {
	// Name names the sweep directory <runs_dir>/<name>/ (default: the file name without extension).
	Name string `yaml:"name"`
	// RunsDir holds the sweep directory (default: the base experiment's runs_dir).
	RunsDir string `yaml:"runs_dir"`
	// Base is an experiment file (relative to the sweep file, else to the working directory) or the
	// name of a built-in config. Exactly one of Base and Experiment is given.
	Base string `yaml:"base"`
	// Experiment is the base experiment written inline, decoded over configs.Default().
	Experiment *configs.Experiment `yaml:"experiment"`
	// Set lists overrides ("a.b=value") applied to the base before any grid cell.
	Set []string `yaml:"set"`
	// Grid maps dotted keys to value lists; runs take every combination (cartesian product).
	Grid yaml.Node `yaml:"grid"`
	// Zip maps dotted keys to value lists of one length; runs take them in lock-step.
	Zip yaml.Node `yaml:"zip"`
	// Names gives swept values short names (same order as the values) for run ids, tables and plots.
	Names map[string][]string `yaml:"names"`
	// Seeds are the experiment seeds every configuration runs with (default: the base's seed).
	Seeds []uint64 `yaml:"seeds"`
	// MoreSeeds adds seeds where one swept key has one value (its name or its value as written):
	// {"model.d_model=128": [2, 3]} also runs every d_model 128 configuration with seeds 2 and 3, after
	// all configurations have run with Seeds.
	MoreSeeds map[string][]uint64 `yaml:"more_seeds"`
}

// Sweep is a resolved sweep: its directory and one Run per configuration and seed.
type Sweep struct {
	Name string
	// Dir is <runs_dir>/<name>: every run lives in Dir/<run id>/.
	Dir string
	// Keys are the swept keys in file order (grid, then zip); Short[i] names Keys[i] in ids and tables.
	Keys  []string
	Short []string
	Runs  []Run
	// Source is the sweep file's text with the command-line overrides, saved as Dir/sweep.yaml.
	Source []byte
}

// Run is one experiment of a sweep.
type Run struct {
	// ID is stable across restarts, built from the settings: "layers=gated_deltanet,seed=2".
	ID string
	// Config is ID without the seed: the group that mean and std are taken over.
	Config string
	// Labels[i] is the value (or its name) of Sweep.Keys[i].
	Labels []string
	Seed   uint64
	Exp    configs.Experiment
	// Invalid is the experiment's validation error: such a run fails without training.
	Invalid error
}

// axis is one swept key with its values rendered as override values and as labels.
type axis struct {
	section string // grid or zip
	line    int    // of the key in the sweep file
	key     string
	values  []string
	labels  []string
}

// Load reads and resolves a sweep file; overrides ("a.b=value", e.g. from -set) apply to the base after
// the file's own set list.
func Load(file string, overrides []string) (*Sweep, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sweep file %s: %w", file, err)
	}
	return Parse(file, src, overrides)
}

// Parse resolves the sweep in src (named file in errors, which also anchors a relative base path).
func Parse(file string, src []byte, overrides []string) (*Sweep, error) {
	def := configs.Default()
	f := File{Experiment: &def}
	if err := configs.DecodeStrict(src, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if f.Name == "" {
		f.Name = configs.BaseName(file)
	}
	var present struct {
		Experiment yaml.Node `yaml:"experiment"`
		Set        yaml.Node `yaml:"set"`
	}
	_ = yaml.Unmarshal(src, &present) // already decoded strictly above: only presence is asked here
	base, err := f.base(file, present.Experiment.Kind != 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i, o := range f.Set {
		key, value, ok := strings.Cut(o, "=")
		if !ok {
			err = errors.New("want key=value, e.g. model.d_model=128")
		} else {
			err = configs.SetKey(&base, key, value)
		}
		if err != nil {
			line := 0
			if i < len(present.Set.Content) {
				line = present.Set.Content[i].Line
			}
			return nil, fmt.Errorf("%s: line %d: set[%d] %q: %w", file, line, i, o, err)
		}
	}
	for _, o := range overrides {
		if err := configs.ApplyOverride(&base, o); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	s, err := f.resolve(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.Source = src
	if len(overrides) > 0 {
		s.Source = append([]byte("# command-line overrides: "+strings.Join(overrides, " ")+"\n"), src...)
	}
	return s, nil
}

// base returns the base experiment, from the inline section or the base file / built-in name.
func (f *File) base(file string, inline bool) (configs.Experiment, error) {
	switch {
	case inline && f.Base != "":
		return configs.Experiment{}, errors.New("give either base (a file or built-in name) or experiment (inline), not both")
	case inline:
		if f.Experiment == nil {
			return configs.Experiment{}, errors.New("experiment is empty")
		}
		return *f.Experiment, nil
	case f.Base == "":
		return configs.Experiment{}, errors.New("no base experiment: set base (a file or built-in name) or experiment (inline)")
	}
	path := f.Base
	if beside := filepath.Join(filepath.Dir(file), f.Base); !filepath.IsAbs(f.Base) && fileExists(beside) {
		path = beside
	}
	exp, err := configs.Load(path, nil)
	if err != nil {
		return configs.Experiment{}, fmt.Errorf("base: %w", err)
	}
	return exp, nil
}

func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

// resolve expands the grid, the zip and the seeds over base into runs.
func (f *File) resolve(base configs.Experiment) (*Sweep, error) {
	s := &Sweep{Name: f.Name}
	if s.Name == "" {
		return nil, errors.New("name is empty: it names the sweep directory")
	}
	runsDir := f.RunsDir
	if runsDir == "" {
		runsDir = base.RunsDir
	}
	s.Dir = filepath.Join(runsDir, s.Name)
	grid, err := f.axes(&f.Grid, "grid")
	if err != nil {
		return nil, err
	}
	zip, err := f.axes(&f.Zip, "zip")
	if err != nil {
		return nil, err
	}
	all := append(append([]axis{}, grid...), zip...)
	if err := f.checkNames(all); err != nil {
		return nil, err
	}
	for _, a := range all {
		s.Keys = append(s.Keys, a.key)
	}
	s.Short = shortKeys(s.Keys)
	seeds := f.Seeds
	if len(seeds) == 0 {
		seeds = []uint64{base.Seed}
	}
	if err := uniqueSeeds(seeds); err != nil {
		return nil, err
	}
	cells, err := combine(grid, zip)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, seed := range seeds { // seeds outermost: a cut-short sweep has every configuration at its first seed
		for _, cell := range cells {
			r, err := s.newRun(base, all, cell, seed)
			if err != nil {
				return nil, err
			}
			if seen[r.ID] {
				return nil, fmt.Errorf("two runs share the id %q: give the values distinct names (names: {key: [...]})", r.ID)
			}
			seen[r.ID] = true
			s.Runs = append(s.Runs, r)
		}
	}
	return s, f.addMoreSeeds(s, base, all, cells, seen)
}

// addMoreSeeds appends the runs of more_seeds, conditions in sorted order.
func (f *File) addMoreSeeds(s *Sweep, base configs.Experiment, all []axis, cells [][]int, seen map[string]bool) error {
	conds := make([]string, 0, len(f.MoreSeeds))
	for cond := range f.MoreSeeds {
		conds = append(conds, cond)
	}
	sort.Strings(conds)
	for _, cond := range conds {
		key, value, _ := strings.Cut(cond, "=")
		k := slices.Index(s.Keys, strings.TrimSpace(key))
		if k < 0 {
			return fmt.Errorf("more_seeds: %q names no swept key (swept: %s)", cond, strings.Join(s.Keys, ", "))
		}
		value = strings.TrimSpace(value)
		matched := false
		for _, seed := range f.MoreSeeds[cond] {
			for _, cell := range cells {
				if all[k].labels[cell[k]] != value && all[k].values[cell[k]] != value {
					continue
				}
				matched = true
				r, err := s.newRun(base, all, cell, seed)
				if err != nil {
					return err
				}
				if seen[r.ID] {
					return fmt.Errorf("more_seeds: %q repeats run %q", cond, r.ID)
				}
				seen[r.ID] = true
				s.Runs = append(s.Runs, r)
			}
		}
		if !matched {
			return fmt.Errorf("more_seeds: %q matches no value of %s (values: %s)", cond, s.Keys[k], strings.Join(all[k].labels, ", "))
		}
	}
	return nil
}

// Relocate moves the sweep to runsDir/name (either empty: unchanged), as -runs and -name ask.
func (s *Sweep) Relocate(runsDir, name string) {
	if name != "" {
		s.Name = name
	}
	if runsDir == "" {
		runsDir = filepath.Dir(s.Dir)
	}
	s.Dir = filepath.Join(runsDir, s.Name)
	for i := range s.Runs {
		s.Runs[i].Exp.RunsDir = s.Dir
	}
}

// axes reads a grid or zip mapping (key -> list of values), keeping the file's key order.
func (f *File) axes(n *yaml.Node, section string) ([]axis, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s must map config keys to lists of values, e.g. {model.d_model: [32, 64]}", n.Line, section)
	}
	var out []axis
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			return nil, fmt.Errorf("line %d: %s.%s must be a non-empty list of values", v.Line, section, k.Value)
		}
		a := axis{section: section, line: k.Line, key: k.Value}
		for j, item := range v.Content {
			value, err := render(item)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s.%s[%d]: %w", item.Line, section, k.Value, j, err)
			}
			a.values = append(a.values, value)
			a.labels = append(a.labels, label(item, value))
		}
		if names, ok := f.Names[a.key]; ok {
			a.labels = names
		}
		out = append(out, a)
	}
	return out, nil
}

// checkNames requires names for swept keys only, one per value, distinct; and every key swept once.
func (f *File) checkNames(all []axis) error {
	index := map[string]axis{}
	for _, a := range all {
		if _, dup := index[a.key]; dup {
			return fmt.Errorf("%s is swept twice (grid and zip, or twice in one)", a.key)
		}
		if a.key == "seed" {
			return errors.New("seed is swept by the seeds list, not by grid or zip")
		}
		index[a.key] = a
	}
	for key, names := range f.Names {
		a, ok := index[key]
		if !ok {
			return fmt.Errorf("names.%s: %s is not a swept key", key, key)
		}
		if len(names) != len(a.values) {
			return fmt.Errorf("names.%s has %d names for %d values", key, len(names), len(a.values))
		}
		seen := map[string]bool{}
		for i, n := range names {
			if n == "" || seen[n] {
				return fmt.Errorf("names.%s[%d] = %q: names must be non-empty and distinct", key, i, n)
			}
			seen[n] = true
		}
	}
	return nil
}

// combine returns the cells (one value index per axis: grid axes, then zip axes) of grid x zip, the
// first grid key varying slowest.
func combine(grid, zip []axis) ([][]int, error) {
	cells := [][]int{{}}
	for _, a := range grid {
		var next [][]int
		for _, c := range cells {
			for i := range a.values {
				next = append(next, append(append([]int{}, c...), i))
			}
		}
		cells = next
	}
	if len(zip) == 0 {
		return cells, nil
	}
	n := len(zip[0].values)
	for _, a := range zip[1:] {
		if len(a.values) != n {
			return nil, fmt.Errorf("zip.%s has %d values but zip.%s has %d: zipped lists advance together", a.key, len(a.values), zip[0].key, n)
		}
	}
	var out [][]int
	for _, c := range cells {
		for i := 0; i < n; i++ {
			next := append([]int{}, c...)
			for range zip {
				next = append(next, i)
			}
			out = append(out, next)
		}
	}
	return out, nil
}

// newRun applies one cell's values to a copy of base. Overrides replace slices rather than writing into
// them, so the copies never share mutable state.
func (s *Sweep) newRun(base configs.Experiment, all []axis, cell []int, seed uint64) (Run, error) {
	r := Run{Seed: seed, Exp: base}
	var parts []string
	for i, a := range all {
		value := a.values[cell[i]]
		if err := configs.SetKey(&r.Exp, a.key, value); err != nil {
			return Run{}, fmt.Errorf("line %d: %s.%s = %s: %w", a.line, a.section, a.key, value, err)
		}
		r.Labels = append(r.Labels, a.labels[cell[i]])
		parts = append(parts, s.Short[i]+"="+idSafe(a.labels[cell[i]]))
	}
	r.Config = strings.Join(parts, ",")
	r.ID = strings.Join(append(parts, fmt.Sprintf("seed=%d", seed)), ",")
	r.Exp.Seed = seed
	r.Exp.Name = r.ID
	r.Exp.RunsDir = s.Dir
	r.Exp.Notices = nil        // Finish notes what applies to this run
	r.Invalid = r.Exp.Finish() // a short run's warm-up is clamped as train -set would
	return r, nil
}
