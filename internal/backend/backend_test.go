package backend

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir()) // no plugin anywhere we look first
	procs := runtime.GOMAXPROCS(0)
	executors := fmt.Sprintf("num_executors=%d", min(procs+1, 8))
	for _, c := range []struct{ setting, want string }{
		{"go", "go:" + executors},
		{"go:", "go:" + executors},
		{"go:parallelism=2", fmt.Sprintf("go:parallelism=2,num_executors=%d", max(3-procs, 1))},
		{"go:ops_sequential", "go:ops_sequential," + executors},
		{"go:ops_parallel", "go:ops_parallel," + executors},
		{"go:num_executors=5,ops_parallel", "go:num_executors=5,ops_parallel"},
		{"xla:cuda", "xla:cuda"},
	} {
		got, err := Resolve(c.setting)
		if err != nil || got.Config != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.setting, got.Config, err, c.want)
		}
	}
	t.Setenv("GOMLX_BACKEND", "go")
	if got, _ := Resolve("auto"); got.Config != "go:"+executors || !strings.Contains(got.Reason, "GOMLX_BACKEND") {
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
	if err != nil || got.Config != withGoDefaults(GoDefault) || !strings.Contains(got.Reason, "nothing is downloaded") {
		t.Errorf("Resolve(auto) = %+v, %v", got, err)
	}
}

// executors leaves the ops' own workers one pool slot per core: on 2 cores (a pool of 4) 3 executors,
// not GoMLX's 8 capped at 4, which left the matmuls one slot.
func TestExecutors(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, c := range []struct{ parallelism, want int }{
		{2 * procs, min(procs+1, 8)},
		{procs, 1},
		{1, 1},
		{procs + 4, 5},
		{100 + procs, 8},
		{-1, 8},
	} {
		if got := executors(c.parallelism); got != c.want {
			t.Errorf("executors(%d) with GOMAXPROCS %d = %d, want %d", c.parallelism, procs, got, c.want)
		}
	}
}
