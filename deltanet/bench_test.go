package deltanet_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
)

// Benchmarks: tokens/s of forward and forward+backward, of the op and of the layer,
// naive vs chunk, float32 on the configured backend, at B = 8, H = 4, C = 64. Graphs compile once per
// shape (cached across the benchmark's b.N rounds) and are run once before the timer starts.
//
// The naive form at T = 1024 takes minutes on the Go backend (its forward+backward graph unrolls 1024
// steps), so it runs only with DELTANET_BENCH_FULL=1; everything else runs by default.

const (
	benchBatch = 8
	benchHeads = 4
	benchChunk = 64
)

// benchRunner, cachedRunner and finalizeAll are layertest's shared benchmark scaffolding.
type benchRunner = lt.Runner

var (
	cachedRunner = lt.CachedRunner
	finalizeAll  = lt.FinalizeAll
)

// opRunner compiles the op (naive or chunk) at T and d = d_k = d_v; with backward, the graph also
// computes the gradients of sum(o) + sum(ht) with respect to every input.
func opRunner(impl string, backward bool, time, d int) benchRunner {
	s := opShape{batch: benchBatch, time: time, heads: benchHeads, dk: d, dv: d}
	inputs := opInputs(1, s, 0, 1, -0.5, 0)
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = as32(x)
	}
	scale := 1 / math.Sqrt(float64(d))
	exec := MustNewExec(lt.Backend(), func(in []*Node) []*Node {
		var o, ht *Node
		if impl == "naive" {
			o, ht = deltanet.Naive(in[0], in[1], in[2], in[3], in[4], in[5], scale, deltanet.GatedDeltaRule)
		} else {
			o, ht = deltanet.Chunked(in[0], in[1], in[2], in[3], in[4], in[5], scale, benchChunk, deltanet.GatedDeltaRule)
		}
		if !backward {
			return []*Node{o, ht}
		}
		return Gradient(Add(ReduceAllSum(o), ReduceAllSum(ht)), in...)
	})
	return func() { finalizeAll(exec.MustCall(args...)) }
}

// layerRunner compiles the Gated DeltaNet layer (d_model = H*d, expand_v 1, short convs) in a mode;
// with backward, the gradients of sum(y) with respect to x and every variable.
func layerRunner(mode string, backward bool, time, d int) benchRunner {
	cfg := deltanet.DefaultConfig()
	cfg.Heads, cfg.HeadDimK, cfg.ExpandV, cfg.ChunkSize, cfg.Mode = benchHeads, d, 1, benchChunk, mode
	dModel := benchHeads * d
	layer, err := deltanet.New(cfg, dModel)
	if err != nil {
		panic(err)
	}
	return lt.MixerRunner(layer, benchBatch, time, dModel, backward)
}

func reportTokens(b *testing.B, steps int, elapsed time.Duration) {
	b.ReportMetric(float64(benchBatch*steps*b.N)/elapsed.Seconds(), "tok/s")
}

// reportCPU reports the process CPU time per op ("cpu-ms/op"): with 2 cores and parallel op scheduling
// it is up to twice the wall time when the machine is idle; when other processes load the machine, wall
// time grows and CPU time much less.
func reportCPU(b *testing.B, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	}
}

func benchGrid(b *testing.B, kind string, impls []string, runner func(impl string, backward bool, time, d int) benchRunner) {
	for _, impl := range impls {
		for _, pass := range []string{"fwd", "fwdbwd"} {
			for _, d := range []int{32, 64} {
				for _, steps := range []int{256, 1024} {
					if impl == "naive" && steps > 256 && os.Getenv("DELTANET_BENCH_FULL") == "" {
						continue
					}
					name := fmt.Sprintf("%s/%s/T%d_d%d", impl, pass, steps, d)
					b.Run(name, func(b *testing.B) {
						run := cachedRunner(kind+"/"+name, func() benchRunner { return runner(impl, pass == "fwdbwd", steps, d) })
						cpu := processCPU()
						lt.TimeRuns(b, run, benchBatch*steps)
						reportCPU(b, processCPU()-cpu)
					})
				}
			}
		}
	}
}

// BenchmarkOp: the gated delta rule op alone.
func BenchmarkOp(b *testing.B) {
	benchGrid(b, "op", []string{"naive", "chunk"}, opRunner)
}

// BenchmarkLayer: the whole Gated DeltaNet layer (projections, convs, gates, norm).
func BenchmarkLayer(b *testing.B) {
	benchGrid(b, "layer", []string{deltanet.ModeNaive, deltanet.ModeChunk}, layerRunner)
}

// BenchmarkScaling times the chunk op at T = 256 and T = 2048 (d = 64) in the same loop and reports
// time(2048)/time(256): linear scaling in T gives about 8.
func BenchmarkScaling(b *testing.B) {
	for _, pass := range []string{"fwd", "fwdbwd"} {
		b.Run(pass, func(b *testing.B) {
			short := cachedRunner("scaling/"+pass+"/256", func() benchRunner { return opRunner("chunk", pass == "fwdbwd", 256, 64) })
			long := cachedRunner("scaling/"+pass+"/2048", func() benchRunner { return opRunner("chunk", pass == "fwdbwd", 2048, 64) })
			b.ResetTimer()
			var tShort, tLong, cpuShort, cpuLong time.Duration
			for i := 0; i < b.N; i++ {
				start, cpu := time.Now(), processCPU()
				short()
				tShort += time.Since(start)
				cpuShort += processCPU() - cpu
				start, cpu = time.Now(), processCPU()
				long()
				tLong += time.Since(start)
				cpuLong += processCPU() - cpu
			}
			b.ReportMetric(float64(tLong)/float64(tShort), "t2048/t256")
			if cpuShort > 0 {
				b.ReportMetric(float64(cpuLong)/float64(cpuShort), "cpu2048/cpu256")
			}
			b.ReportMetric(float64(benchBatch*2048*b.N)/tLong.Seconds(), "tok/s@2048")
			b.ReportMetric(float64(benchBatch*256*b.N)/tShort.Seconds(), "tok/s@256")
		})
	}
}

// BenchmarkOpProfile CPU-profiles the chunk op's forward+backward (and forward) at T = 1024, d = 64 (the
// timed loop only; compilation and inputs are outside) and reports the share of the profile's CPU time
// spent in each kind of Go backend op (classifyOp): matmul_%, transpose_%, copy_% (slice, pad,
// concatenate, broadcast, gather, identity copies), elementwise_%, reduce_% and other_% (scheduling,
// GC). It cannot run under go test -cpuprofile (one CPU profile at a time); it skips then.
func BenchmarkOpProfile(b *testing.B) {
	for _, pass := range []string{"fwdbwd", "fwd"} {
		b.Run(pass, func(b *testing.B) {
			run := cachedRunner("op/chunk/"+pass+"/T1024_d64", func() benchRunner { return opRunner("chunk", pass == "fwdbwd", 1024, 64) })
			profileOp(b, run, 1024)
		})
	}
}

func profileOp(b *testing.B, run benchRunner, steps int) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		b.Skipf("cannot start a CPU profile (is -cpuprofile set?): %v", err)
	}
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	for i := 0; i < b.N; i++ {
		run()
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu
	pprof.StopCPUProfile()
	b.StopTimer()
	reportTokens(b, steps, elapsed)
	reportCPU(b, cpu)
	samples, err := readCPUProfile(buf.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	byCategory := map[string]int64{}
	var total int64
	for _, s := range samples {
		byCategory[classifyOp(s.stack)] += s.nanos
		total += s.nanos
	}
	if total == 0 {
		b.Skip("no CPU samples")
	}
	for _, c := range opCategories {
		b.ReportMetric(100*float64(byCategory[c])/float64(total), c+"_%")
	}
	if os.Getenv("DELTANET_PROFILE_TOP") != "" { // the heaviest ops, to see inside a category
		byLeaf := map[string]int64{}
		for _, s := range samples {
			byLeaf[classifyOp(s.stack)+" "+opFrame(s.stack)] += s.nanos
		}
		type leaf struct {
			name  string
			nanos int64
		}
		var leaves []leaf
		for name, n := range byLeaf {
			leaves = append(leaves, leaf{name, n})
		}
		sort.Slice(leaves, func(i, j int) bool { return leaves[i].nanos > leaves[j].nanos })
		for _, l := range leaves[:min(len(leaves), 25)] {
			fmt.Fprintf(os.Stderr, "%5.1f%% %s\n", 100*float64(l.nanos)/float64(total), l.name)
		}
	}
}

// opFrame is the innermost frame of the Go backend's op packages in stack (the leaf when none).
func opFrame(stack []string) string {
	for _, fn := range stack {
		if strings.Contains(fn, "internal/gobackend/ops.exec") || strings.Contains(fn, "internal/gobackend/dot.") ||
			strings.Contains(fn, "gobackend.CopyFlat") {
			return fn[strings.LastIndex(fn, "/")+1:]
		}
	}
	if len(stack) == 0 {
		return "?"
	}
	return stack[0]
}
