package titans

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// BenchmarkLMM measures the LMM layer (2-layer memory, chunk 64, B = 8, H = 4, d_model = H * Dh) in
// float32 on the test backend: forward, and forward + backward (gradients of every variable and of x).
// Graphs are compiled before the timer starts. Reported as tokens/s (batch * time per call).
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench LMM -benchtime 3x
func BenchmarkLMM(b *testing.B) {
	sizes := []struct{ time, headDim int }{{256, 32}, {1024, 32}, {2048, 32}, {256, 64}, {1024, 64}}
	for _, backward := range []bool{false, true} {
		for _, s := range sizes {
			name := "fwd"
			if backward {
				name = "fwdbwd"
			}
			b.Run(fmt.Sprintf("%s/T=%d/Dh=%d", name, s.time, s.headDim), func(b *testing.B) {
				benchLMM(b, ModePaper, s.time, s.headDim, backward)
			})
		}
	}
}

// BenchmarkLMMTP is BenchmarkLMM in the tp mode as titans-pytorch's NeuralMemory runs it (tpBenchConfig:
// memory depth 2, expansion 4, batch_size None = TTTBatchSize 0, max lr 1, no clipping; B = 8, H = 4,
// Dh = 32, chunks of 64) at T = 256, 1024 and 2048. The "scaling" sub-benchmarks time T = 256 and
// T = 2048 in the same iterations and report t2048/t256 (8 = linear in T), by wall time and by CPU time.
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench LMMTP -benchtime 3x
func BenchmarkLMMTP(b *testing.B) {
	for _, backward := range []bool{false, true} {
		name := "fwd"
		if backward {
			name = "fwdbwd"
		}
		for _, time := range []int{256, 1024, 2048} {
			b.Run(fmt.Sprintf("%s/T=%d/Dh=32", name, time), func(b *testing.B) {
				runBench(b, []*lmmBench{newLMMBench(b, tpBenchConfig(), time, backward)})
			})
		}
		b.Run(name+"/scaling", func(b *testing.B) {
			short, long := newLMMBench(b, tpBenchConfig(), 256, backward), newLMMBench(b, tpBenchConfig(), 2048, backward)
			runBench(b, []*lmmBench{short, long})
			b.ReportMetric(long.elapsed.Seconds()/short.elapsed.Seconds(), "t2048/t256")
			b.ReportMetric(long.cpu.Seconds()/short.cpu.Seconds(), "cpu2048/cpu256")
		})
	}
}

// tpBenchConfig is the tp mode of the golden titans-pytorch tests (goldenConfig: depth 2, expansion 4,
// TTTBatchSize 0, MaxLR 1, GradClamp 0, the retrieve gate) at the benchmark's sizes: H = 4, Dh = 32,
// chunks of 64.
func tpBenchConfig() Config {
	cfg := goldenConfig(2)
	cfg.Heads, cfg.HeadDim, cfg.ChunkSize = 4, 32, 64
	return cfg
}

func benchLMM(b *testing.B, mode string, time, headDim int, backward bool) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.TTTBatchSize = mode, 256
	cfg.Heads, cfg.HeadDim, cfg.ChunkSize = 4, headDim, 64
	runBench(b, []*lmmBench{newLMMBench(b, cfg, time, backward)})
}

// lmmBench is one compiled (and warmed-up) LMM graph with its input, B = 8, d_model = H * Dh.
type lmmBench struct {
	exec    *model.Exec
	x       *tensors.Tensor
	tokens  int
	elapsed time.Duration // time spent in this graph's calls
	cpu     time.Duration // process CPU time spent in them
}

func newLMMBench(b *testing.B, cfg Config, time int, backward bool) *lmmBench {
	const batch = 8
	dModel := cfg.Heads * cfg.HeadDim
	m, err := NewLMM(cfg, dModel)
	if err != nil {
		b.Fatal(err)
	}
	store := model.NewStore()
	exec := model.MustNewExec(lt.Backend(), store, func(scope *model.Scope, x *Node) []*Node {
		y, _ := m.Apply(scope.In("lmm"), x, nil)
		if !backward {
			return []*Node{y}
		}
		loss := ReduceAllMean(Square(y))
		grads := scope.BuildTrainableVariablesGradientsGraph(loss)
		return append([]*Node{loss, Gradient(loss, x)[0]}, grads...)
	})
	b.Cleanup(exec.Finalize)
	data := make([]float32, batch*time*dModel)
	rng := lt.NewRand(1)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	lb := &lmmBench{exec: exec, x: tensors.FromFlatDataAndDimensions(data, batch, time, dModel), tokens: batch * time}
	lb.call() // compile and warm up outside the timer
	lb.elapsed, lb.cpu = 0, 0
	return lb
}

func (lb *lmmBench) call() {
	start, cpu := time.Now(), cpuTime()
	for _, o := range lb.exec.MustCall(lb.x) {
		o.FinalizeAll()
	}
	lb.elapsed += time.Since(start)
	lb.cpu += cpuTime() - cpu
}

// runBench calls every graph b.N times and reports the tokens/s of all of them together, by wall time and
// by the process's CPU time (user + system: less sensitive to other processes on a shared machine; it
// exceeds the wall time when the backend runs ops in parallel).
func runBench(b *testing.B, benches []*lmmBench) {
	cpu0 := cpuTime()
	b.ResetTimer()
	tokens := 0
	for i := 0; i < b.N; i++ {
		for _, lb := range benches {
			lb.call()
			tokens += lb.tokens
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
	b.ReportMetric(float64(tokens)/cpu.Seconds(), "tok/cpu-s")
}

// cpuTime is the user + system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
