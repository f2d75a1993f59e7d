package layertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/numpy"
)

// The golden sets (a package's testdata/<set>/, copied from the shared reference vectors) hold an
// index.json listing their cases and one directory of float64 .npy arrays per case.

// GoldenCases decodes dir/index.json, the list of a golden set's cases, into C. want > 0 is the number
// of cases the test expects (a truncated copy fails); 0 asks for at least one.
func GoldenCases[C any](t testing.TB, dir string, want int) []C {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []C
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	if (want > 0 && len(cases) != want) || len(cases) == 0 {
		t.Fatalf("%s/index.json lists %d cases, want %d", dir, len(cases), max(want, 1))
	}
	return cases
}

// GoldenArray reads the array name of case caseName: dir/caseName/name.npy.
func GoldenArray(t testing.TB, dir, caseName, name string) *tensors.Tensor {
	t.Helper()
	x, err := numpy.FromNpyFile(filepath.Join(dir, caseName, name+".npy"))
	if err != nil {
		t.Fatalf("golden %s/%s: %v", caseName, name, err)
	}
	return x
}

// Float64 copies a float tensor into float64, so float32 results compare against float64 references.
func Float64(x *tensors.Tensor) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(Floats(x), x.Shape().Dimensions...)
}

// Worst checks arrays against their references (AssertClose on float64 copies: relative L2 error, a
// test failure above tol) and remembers the largest error and the array it came from, for a test's
// one-line summary of a golden case.
type Worst struct {
	T     testing.TB
	Label string  // prefixes every array name in failures
	Max   float64 // largest relative L2 error checked so far
	Which string  // the array it belongs to
}

// Check compares got with want (tolerance tol) and updates Max and Which.
func (w *Worst) Check(name string, got, want *tensors.Tensor, tol float64) {
	w.T.Helper()
	err := AssertClose(w.T, w.Label+" "+name, Float64(got), want, tol)
	if err > w.Max || w.Which == "" {
		w.Max, w.Which = err, name
	}
}
