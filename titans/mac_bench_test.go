package titans

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
)

// BenchmarkMAC is the paper-mode MAC (B = 8, H = 4, Dh = 32, chunks of 64, segments of 128, 4
// persistent tokens, float32) over rows of T = 512 without starts (Apply) and, where MAC is a
// layers.DocumentMixer, packing documents of 100 tokens (ApplyDocuments: starts mid-segment), forward
// and forward + backward, in tokens/s by wall time and by the process's CPU time (bench_test.go's
// runBench says why).
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench MAC -benchtime 3x
func BenchmarkMAC(b *testing.B) {
	const batch, time = 8, 512
	cfg := DefaultConfig()
	cfg.Variant, cfg.Heads, cfg.HeadDim, cfg.ChunkSize, cfg.SegmentSize, cfg.PersistentTokens = VariantMAC, 4, 32, 64, 128, 4
	dModel := cfg.Heads * cfg.HeadDim
	for _, backward := range []bool{false, true} {
		for _, packed := range []bool{false, true} {
			name := fmt.Sprintf("fwd/packed=%v", packed)
			if backward {
				name = fmt.Sprintf("fwdbwd/packed=%v", packed)
			}
			b.Run(name, func(b *testing.B) {
				mixer, err := New(cfg, dModel)
				if err != nil {
					b.Fatal(err)
				}
				if packed {
					dm, ok := mixer.(layers.DocumentMixer)
					if !ok {
						b.Skip("MAC is no layers.DocumentMixer")
					}
					mixer = packedMixer{DocumentMixer: dm, every: 100}
				}
				run := lt.CachedRunner("titans-mac/"+name, func() lt.Runner {
					return lt.MixerRunner(mixer, batch, time, dModel, backward)
				})
				cpu := cpuTime()
				b.ResetTimer()
				for range b.N {
					run()
				}
				b.StopTimer()
				b.ReportMetric(float64(batch*time*b.N)/b.Elapsed().Seconds(), "tokens/s")
				b.ReportMetric(float64(batch*time*b.N)/(cpuTime()-cpu).Seconds(), "tok/cpu-s")
			})
		}
	}
}
