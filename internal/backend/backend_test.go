package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

func TestResolve(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir()) // no plugin anywhere we look first
	for _, c := range []struct{ setting, want string }{
		{"go", "go:ops_sequential"},
		{"go:parallelism=2", "go:parallelism=2,ops_sequential"},
		{"go:ops_parallel", "go:ops_parallel"},
		{"xla:cuda", "xla:cuda"},
	} {
		got, err := Resolve(c.setting)
		if err != nil || got.Config != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.setting, got.Config, err, c.want)
		}
	}
	t.Setenv("GOMLX_BACKEND", "go")
	if got, _ := Resolve("auto"); got.Config != "go:ops_sequential" || !strings.Contains(got.Reason, "GOMLX_BACKEND") {
		t.Errorf("auto with $GOMLX_BACKEND=go: %+v", got)
	}
	if _, err := Resolve("tpu-please"); err == nil || !strings.Contains(err.Error(), `"tpu-please"`) {
		t.Errorf("unknown setting: %v", err)
	}
}

// With $GOMLX_BACKEND unset and no PJRT plugin installed, auto picks the Go backend and says that
// nothing is downloaded.
func TestAutoWithoutPluginIsGo(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	if len(installedPlugins()) > 0 {
		t.Skip("a PJRT plugin is installed on this machine: auto picks XLA here")
	}
	got, err := Resolve("auto")
	if err != nil || got.Config != GoDefault || !strings.Contains(got.Reason, "nothing is downloaded") {
		t.Errorf("Resolve(auto) = %+v, %v", got, err)
	}
}

// The deadlock guard (DESIGN.md, "Deadlock"): several independent large matmuls in one graph finish
// under a deadline on the backend tests use. A regression to parallel op scheduling shows up as a
// failure here instead of a hung CI.
func TestIndependentLargeMatmulsFinish(t *testing.T) {
	b := MustNewForTests()
	done := make(chan error, 1)
	go func() {
		exec, err := NewExec(b, func(g *Graph) *Node {
			sum := ScalarZero(g, dtypes.Float32)
			for i := 0; i < 6; i++ {
				x := Iota(g, shapes.Make(dtypes.Float32, 384, 384), i%2)
				x = MulScalar(x, 1e-3*float64(i+1))
				sum = Add(sum, ReduceAllSum(MatMul(x, Transpose(x, 0, 1))))
			}
			return sum
		})
		if err != nil {
			done <- err
			return
		}
		_, err = exec.Call()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("independent matmuls did not finish in 120 s: the Go backend's parallel op scheduler deadlocked (use ops_sequential)")
	}
}
