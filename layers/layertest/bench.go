package layertest

import (
	"sync"

	"github.com/gomlx/gomlx/core/tensors"
)

// Runner runs one compiled graph on fixed inputs (a benchmark's unit of work).
type Runner func()

var (
	runnersMu sync.Mutex
	runners   = map[string]Runner{}
)

// CachedRunner builds the runner of name once per process and runs it once before returning it, so
// compilation stays outside every benchmark's timed loop (b.N rounds reuse it).
func CachedRunner(name string, build func() Runner) Runner {
	runnersMu.Lock()
	defer runnersMu.Unlock()
	run, ok := runners[name]
	if !ok {
		run = build()
		run()
		runners[name] = run
	}
	return run
}

// FinalizeAll frees the on-device and host memory of a graph's outputs right away.
func FinalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}
