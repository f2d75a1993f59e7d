package backend

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir()) // no plugin anywhere we look first
	for _, c := range []struct{ setting, want string }{
		{"go", "go"},
		{"go:", "go"},
		{"go:parallelism=2", "go:parallelism=2"},
		{"go:ops_sequential", "go:ops_sequential"},
		{"go:ops_parallel", "go:ops_parallel"},
		{"xla:cuda", "xla:cuda"},
	} {
		got, err := Resolve(c.setting)
		if err != nil || got.Config != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.setting, got.Config, err, c.want)
		}
	}
	t.Setenv("GOMLX_BACKEND", "go")
	if got, _ := Resolve("auto"); got.Config != "go" || !strings.Contains(got.Reason, "GOMLX_BACKEND") {
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
