package gla_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/engramlx/engram/gla"
	lt "github.com/engramlx/engram/layers/layertest"
)

// BenchmarkGLA: tokens/s of the GLA layer (chunked form, chunks of 64 in sub-chunks of 16), forward and
// forward+backward (the gradients of sum(y) with respect to x and every variable), and CPU ms per call,
// float32 on the
// configured backend, at B = 8, H = 4, d_k = d_v = 64 per head, d_model = H d = 256 (expand_k =
// expand_v = 1: the sizes of deltanet's BenchmarkLayer at d = 64). The graph compiles once per shape,
// outside the timer.
func BenchmarkGLA(b *testing.B) {
	const batch, heads, dim, steps = 8, 4, 64, 1024
	for _, pass := range []string{"fwd", "fwdbwd"} {
		name := fmt.Sprintf("chunk/%s/T%d_d%d", pass, steps, dim)
		b.Run(name, func(b *testing.B) {
			run := lt.CachedRunner("gla/"+name, func() lt.Runner {
				cfg := gla.DefaultConfig()
				cfg.Heads, cfg.ExpandK, cfg.ExpandV = heads, 1, 1
				layer, err := gla.New(cfg, heads*dim)
				if err != nil {
					b.Fatal(err)
				}
				return lt.MixerRunner(layer, batch, steps, heads*dim, pass == "fwdbwd")
			})
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			for i := 0; i < b.N; i++ {
				run()
			}
			b.ReportMetric(float64(batch*steps*b.N)/time.Since(start).Seconds(), "tok/s")
			if used := processCPU() - cpu; used > 0 {
				// Wall time grows with the machine's load; CPU time much less.
				b.ReportMetric(float64(used.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			}
		})
	}
}
