// Package arch holds the test that keeps the import graph the one docs/design.md draws: dependencies
// point one way, cmd -> (train, eval, sweep, export) -> model -> (titans, deltanet, mom, rmt) -> layers,
// with data, checkpoints and internal/* below everything that uses them.
package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/engramlx/engram/"

// forbidden lists, per package (relative to the module root), the packages it must never import
// directly. "cmd/" forbids every command.
var forbidden = map[string][]string{
	// The trainer, configs, evaluation, sweeps and export know mixers only through model and layers'
	// capabilities; the curriculum is data's, not rmt's. Evaluation reads exports (export.Load), so
	// export must never import eval.
	"train":   {"deltanet", "titans", "mom", "rmt", "eval", "sweep", "export"},
	"configs": {"deltanet", "titans", "mom", "rmt", "train", "eval", "sweep", "checkpoints"},
	"eval":    {"deltanet", "titans", "mom", "rmt", "sweep"},
	"sweep":   {"deltanet", "titans", "mom", "rmt", "eval", "export"},
	"export":  {"deltanet", "titans", "mom", "rmt", "eval", "sweep"},
	// The model composes mixers; nothing it uses knows about training or evaluation.
	"model": {"train", "eval", "sweep", "export", "configs", "checkpoints"},
	// Mixers and wrappers depend only on layers (and each other where one is built on another).
	"deltanet": {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "data", "titans", "mom", "rmt"},
	"titans":   {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "data", "deltanet", "mom", "rmt"},
	"mom":      {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "data", "titans", "rmt"},
	"rmt":      {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "data", "deltanet", "titans", "mom"},
	"layers":   {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "data", "deltanet", "titans", "mom", "rmt"},
	// Data and checkpoints depend on nothing above them.
	"data":        {"model", "train", "eval", "sweep", "export", "configs", "checkpoints", "layers", "deltanet", "titans", "mom", "rmt"},
	"checkpoints": {"model", "train", "eval", "sweep", "export", "configs", "deltanet", "titans", "mom", "rmt"},
}

// imports returns, for every package directory under root, the module packages its non-test files
// import (relative to the module root).
func imports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		if out[dir] == nil {
			out[dir] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) {
				out[dir][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// No package imports what docs/design.md forbids, and no package imports a command.
func TestForbiddenImports(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	graph := imports(t, root)
	if len(graph["train"]) == 0 || len(graph["model"]) == 0 {
		t.Fatalf("import graph looks empty: %v", graph)
	}
	var bad []string
	for pkg, deps := range graph {
		for dep := range deps {
			if strings.HasPrefix(dep, "cmd/") {
				bad = append(bad, pkg+" -> "+dep+" (no package imports a command)")
			}
			for _, f := range forbidden[pkg] {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					bad = append(bad, pkg+" -> "+dep)
				}
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("forbidden import: %s", b)
	}
}
