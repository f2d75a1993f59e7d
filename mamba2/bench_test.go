package mamba2_test

import (
	"fmt"
	"testing"
	"time"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mamba2"
)

// BenchmarkMamba2: tokens/s of the Mamba2 layer (chunked form), forward and forward+backward (the
// gradients of sum(y) with respect to x and every variable), float32 on the configured backend, at
// B = 8, H = 4, head_dim P = 64, state_size N = 64, one group, chunks of 64, d_model = H P = 256 (the
// sizes of deltanet's BenchmarkLayer at d = 64). The graph compiles once per shape, outside the timer.
func BenchmarkMamba2(b *testing.B) {
	const batch, heads, dim, chunk = 8, 4, 64, 64
	for _, pass := range []string{"fwd", "fwdbwd"} {
		for _, steps := range []int{1024} {
			name := fmt.Sprintf("chunk/%s/T%d_P%d_N%d", pass, steps, dim, dim)
			b.Run(name, func(b *testing.B) {
				run := lt.CachedRunner("mamba2/"+name, func() lt.Runner {
					cfg := mamba2.DefaultConfig()
					cfg.Heads, cfg.HeadDim, cfg.StateSize, cfg.ChunkSize = heads, dim, dim, chunk
					layer, err := mamba2.New(cfg, heads*dim)
					if err != nil {
						b.Fatal(err)
					}
					return lt.MixerRunner(layer, batch, steps, heads*dim, pass == "fwdbwd")
				})
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					run()
				}
				b.ReportMetric(float64(batch*steps*b.N)/time.Since(start).Seconds(), "tok/s")
			})
		}
	}
}
