package layertest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
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

// MixerRunner compiles mixer over a fixed random x [batch, time, dModel] (float32, seeded) on the test
// backend: forward returns y and the next state; with backward the gradients of sum(y) with respect to
// x and every variable. The benchmarks of every mixer package time it.
func MixerRunner(mixer layers.Mixer, batch, time, dModel int, backward bool) Runner {
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(1))
	exec := model.MustNewExec(Backend(), store, func(scope *model.Scope, x *Node) []*Node {
		y, state := mixer.Apply(scope.In("mixer"), x, nil)
		if !backward {
			return append([]*Node{y}, state...)
		}
		wrt := []*Node{x}
		for v := range store.IterVariables() {
			if v.Trainable && v.InUseByGraph(x.Graph()) {
				wrt = append(wrt, v.NodeValue(x.Graph()))
			}
		}
		return Gradient(ReduceAllSum(y), wrt...)
	})
	values := Floats(RandNormal(NewRand(2), 1, batch, time, dModel))
	flat := make([]float32, len(values))
	for i, v := range values {
		flat[i] = float32(v)
	}
	x := tensors.FromFlatDataAndDimensions(flat, batch, time, dModel)
	return func() { FinalizeAll(exec.MustCall(x)) }
}

// TimeRuns runs run b.N times and reports tokens/s over the whole loop ("tok/s", the Go benchmark's
// mean) and over the median call ("median_tok/s", the statistic docs/bench/pytorch_reference.py reports
// for the PyTorch rows, so the two compare like with like). It returns the loop's wall time.
func TimeRuns(b *testing.B, run Runner, tokensPerRun int) time.Duration {
	calls := make([]time.Duration, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range calls {
		callStart := time.Now()
		run()
		calls[i] = time.Since(callStart)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(tokensPerRun*b.N)/elapsed.Seconds(), "tok/s")
	slices.Sort(calls)
	median := calls[len(calls)/2]
	if len(calls)%2 == 0 {
		median = (calls[len(calls)/2-1] + median) / 2
	}
	b.ReportMetric(float64(tokensPerRun)/median.Seconds(), "median_tok/s")
	return elapsed
}
