package mom_test

import (
	"fmt"
	"syscall"
	"testing"
	stdtime "time"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
)

// Benchmark sizes: B = 8, H = 4 heads of d_k = d_v = 64, d_model = 256, chunks of 64, T = 256 and
// 1024, float32 on the configured backend.
const (
	benchBatch = 8
	benchHeads = 4
	benchDim   = 64
	benchChunk = 64
)

var benchTimes = []int{256, 1024}

// layerRunner compiles a mixer over x [B, T, H*d] and runs it once (so compilation is not timed); with
// backward the graph also takes the gradients of sum(y) with respect to x and every variable.
func layerRunner(mixer layers.Mixer, time int, backward bool) func() {
	run := lt.MixerRunner(mixer, benchBatch, time, benchHeads*benchDim, backward)
	run()
	return run
}

// BenchmarkMoM: tokens/s of the MoM layer (paper defaults: M = 4, top-2, shared
// memory; capacity factor 1.25) next to the Gated DeltaNet layer of the same heads and widths, forward
// and forward+backward. Both run in the same loop, alternating, so the machine's load hits them alike;
// "mom/gdn" is MoM's time over Gated DeltaNet's. The "noshared" variant drops the shared memory.
func BenchmarkMoM(b *testing.B) {
	dn := deltanet.DefaultConfig()
	dn.Heads, dn.HeadDimK, dn.ExpandV, dn.ChunkSize = benchHeads, benchDim, 1, benchChunk
	gdn, err := deltanet.New(dn, benchHeads*benchDim)
	if err != nil {
		b.Fatal(err)
	}
	for _, variant := range []string{"shared", "noshared"} {
		cfg := mom.DefaultConfig()
		cfg.Memory = dn
		cfg.SharedMemory = variant == "shared"
		moe, err := mom.New(cfg, benchHeads*benchDim)
		if err != nil {
			b.Fatal(err)
		}
		for _, time := range benchTimes {
			for _, pass := range []string{"fwd", "fwdbwd"} {
				b.Run(fmt.Sprintf("%s/T%d/%s", variant, time, pass), func(b *testing.B) {
					benchPair(b, gdn, moe, time, pass == "fwdbwd")
				})
			}
		}
	}
}

// benchPair times the two layers alternately: wall time, and the process's CPU time (user + system,
// all threads) around each run, which the other processes of a loaded machine disturb less.
func benchPair(b *testing.B, gdn, moe layers.Mixer, time int, backward bool) {
	runGDN, runMoM := layerRunner(gdn, time, backward), layerRunner(moe, time, backward)
	b.ResetTimer()
	var tGDN, tMoM, cGDN, cMoM stdtime.Duration
	timed := func(run func(), wall, cpu *stdtime.Duration) {
		start, cpuStart := stdtime.Now(), cpuTime()
		run()
		*wall += stdtime.Since(start)
		*cpu += cpuTime() - cpuStart
	}
	for i := 0; i < b.N; i++ {
		timed(runGDN, &tGDN, &cGDN)
		timed(runMoM, &tMoM, &cMoM)
	}
	tokens := float64(benchBatch * time * b.N)
	b.ReportMetric(tokens/tMoM.Seconds(), "mom_tok/s")
	b.ReportMetric(tokens/tGDN.Seconds(), "gdn_tok/s")
	b.ReportMetric(float64(tMoM)/float64(tGDN), "mom/gdn")
	b.ReportMetric(float64(cMoM)/float64(b.N)/1e9, "mom_cpu_s/op")
	b.ReportMetric(float64(cGDN)/float64(b.N)/1e9, "gdn_cpu_s/op")
	b.ReportMetric(float64(cMoM)/float64(cGDN), "mom/gdn_cpu")
}

// cpuTime is the process's user + system CPU time so far (0 where getrusage is unavailable).
func cpuTime() stdtime.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return stdtime.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
