// Package backend chooses the GoMLX compute backend for a run.
//
// The choice, for `backend: auto` (the default):
//  1. GOMLX_BACKEND, when set, is used as given (a GoMLX backend config such as "go" or "xla:cuda");
//  2. otherwise XLA, when a PJRT plugin is already installed on this machine;
//  3. otherwise GoMLX's pure-Go backend.
//
// Nothing downloads a PJRT plugin unless the user asked for "xla" explicitly: go-xla's auto-installer
// is linked in but disabled for every other path.
//
// The Go backend runs with GoMLX's default op scheduling (parallel when one graph runs at a time);
// "go:ops_sequential" forces one op at a time. (compute v0.1.6, before GoMLX v0.28.16, could deadlock
// under parallel scheduling; deltanet's TestParallelSchedulerFinishesChunkedOp guards the graphs that hung.)
//
// One departure from GoMLX's defaults: the number of executor goroutines of the parallel scheduler
// (num_executors). The backend's worker pool has 2 x GOMAXPROCS slots, and every executor but the
// caller holds one of them for the whole execution, idle or not; the library's default, 8 executors
// capped at the pool size, leaves the ops' own workers (a matmul's row blocks, a transpose's strips) a
// single slot on a machine with 2 to 4 cores, so the big products run on one core. Unless the config
// names num_executors, Engram starts parallelism - GOMAXPROCS + 1 executors (at most GoMLX's 8), which
// leaves the ops as many slots as there are cores. On 2 cores (3 executors instead of 4), same sitting:
// the gated delta rule op fwd+bwd 1.6x faster, the Gated DeltaNet layer 1.5-1.8x, causal attention
// 1.5-2.0x, the Titans memory 1.4-1.6x, and the quickstart 1.45-1.6x (docs/results.md, issue 14).
package backend

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers "go"
	"github.com/gomlx/go-xla/compute/xla"
	_ "github.com/gomlx/go-xla/compute/xla/autoinstall" // enabled only for an explicit "xla"
	"github.com/gomlx/go-xla/pjrt"
)

// GoDefault is the Go backend configuration used when the user did not give one.
const GoDefault = "go"

// Choice is a resolved backend configuration and why it was chosen.
type Choice struct {
	Config string // a GoMLX backend config, e.g. "go", "go:ops_sequential" or "xla:cpu"
	Reason string // one line for the user
}

// Resolve turns the user's setting (auto, go, go:..., xla, xla:plugin) into a backend config.
// It never downloads anything.
func Resolve(setting string) (Choice, error) {
	setting = strings.TrimSpace(setting)
	switch {
	case setting == "" || setting == "auto":
		if env, ok := os.LookupEnv(compute.ConfigEnvVar); ok && env != "" {
			return Choice{Config: withGoDefaults(env), Reason: fmt.Sprintf("from $%s", compute.ConfigEnvVar)}, nil
		}
		if plugins := installedPlugins(); len(plugins) > 0 {
			return Choice{Config: "xla:" + plugins[0], Reason: fmt.Sprintf("PJRT plugin %q found", plugins[0])}, nil
		}
		return Choice{Config: withGoDefaults(GoDefault), Reason: "no PJRT plugin installed and $GOMLX_BACKEND unset; nothing is downloaded"}, nil
	case setting == "go" || strings.HasPrefix(setting, "go:"):
		return Choice{Config: withGoDefaults(setting), Reason: "asked for in the config"}, nil
	case setting == "xla" || strings.HasPrefix(setting, "xla:"):
		return Choice{Config: setting, Reason: "asked for in the config (may download a PJRT plugin)"}, nil
	}
	return Choice{}, fmt.Errorf("backend: unknown value %q (want auto, go, go:<options>, xla or xla:<plugin>)", setting)
}

// New resolves the setting, prints one line saying which backend runs (when log is non-nil) and creates it.
func New(setting string, log func(format string, args ...any)) (compute.Backend, Choice, error) {
	choice, err := Resolve(setting)
	if err != nil {
		return nil, choice, err
	}
	// Only a user who named xla (in the config or in $GOMLX_BACKEND) may trigger a plugin download.
	userNamedXLA := strings.HasPrefix(setting, "xla") ||
		(strings.HasPrefix(choice.Config, "xla") && os.Getenv(compute.ConfigEnvVar) != "")
	xla.EnableAutoInstall(userNamedXLA)
	if log != nil {
		log("backend: %s (%s)", choice.Config, choice.Reason)
	}
	b, err := newBackend(choice.Config)
	if err != nil {
		return nil, choice, fmt.Errorf("backend %q: %w", choice.Config, err)
	}
	return b, choice, nil
}

// MustNewForTests returns the backend tests use: $GOMLX_BACKEND when set, else the Go backend, and never
// downloads.
func MustNewForTests() compute.Backend {
	config := withGoDefaults(GoDefault)
	if env, ok := os.LookupEnv(compute.ConfigEnvVar); ok && env != "" {
		config = withGoDefaults(env)
	}
	xla.EnableAutoInstall(false)
	b, err := newBackend(config)
	if err != nil {
		panic(err)
	}
	return b
}

// newBackend turns GoMLX's panics on unknown backends into errors.
func newBackend(config string) (b compute.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return compute.NewWithConfig(config)
}

// withGoDefaults completes a Go backend config ("go" or "go:options"; anything else is returned as
// is) with the number of executors (see the package doc) unless it names one. Op scheduling is GoMLX's
// default unless the config names one.
func withGoDefaults(config string) string {
	options, isGo := strings.CutPrefix(config, "go")
	if !isGo || (options != "" && !strings.HasPrefix(options, ":")) {
		return config
	}
	options = strings.TrimPrefix(options, ":")
	parallelism := 2 * runtime.GOMAXPROCS(0) // the Go backend's default worker pool size
	var kept []string
	for option := range strings.SplitSeq(options, ",") {
		key, value, _ := strings.Cut(option, "=")
		switch key {
		case "":
			continue
		case "num_executors":
			return config // the user's choice
		case "parallelism":
			if n, err := strconv.Atoi(value); err == nil {
				parallelism = n // (the backend reports a bad value itself)
			}
		}
		kept = append(kept, option)
	}
	return "go:" + strings.Join(append(kept, fmt.Sprintf("num_executors=%d", executors(parallelism))), ",")
}

// executors returns the number of executor goroutines Engram gives the Go backend's parallel scheduler
// for a worker pool of the given size (GoMLX: 2 x GOMAXPROCS; <= 0: unlimited or off): the pool less one
// slot per core, plus the caller's executor, between 1 and GoMLX's default of 8.
func executors(parallelism int) int {
	if parallelism <= 0 {
		return maxExecutors
	}
	return min(max(parallelism-runtime.GOMAXPROCS(0)+1, 1), maxExecutors)
}

// maxExecutors is GoMLX's default number of executors (gobackend.DefaultNumExecutors).
const maxExecutors = 8

// installedPlugins lists PJRT plugins already on this machine, without triggering an install.
func installedPlugins() []string {
	xla.EnableAutoInstall(false)
	var names []string
	for name := range pjrt.AvailablePlugins() {
		names = append(names, name)
	}
	sort.Strings(names)
	// Prefer an accelerator over the CPU plugin when both are installed.
	sort.SliceStable(names, func(i, j int) bool { return names[i] != "cpu" && names[j] == "cpu" })
	return names
}
