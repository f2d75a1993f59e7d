package titans

import (
	"testing"
)

// BenchmarkMiras measures the three Miras models' layers next to the Titans memory they extend, at the
// same sizes and chunk (B = 8, H = 4, Dh = 32, T = 1024, 2-layer memory of expansion 2, chunks of 16,
// the model default), forward and forward + backward, in float32. moneta and memora run the default
// chunk-boundary reads (miras_chunk.go; their exact reads, miras_exact_reads, cost about 20x Titans);
// yaad keeps Titans' rank-1 read.
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench Miras -benchtime 1x
func BenchmarkMiras(b *testing.B) {
	models := []struct{ name, bias, retention string }{
		{"titans", BiasL2, RetentionL2}, {"moneta", BiasLp, RetentionLq}, {"yaad", BiasHuber, RetentionL2}, {"memora", BiasL2, RetentionKL},
	}
	for _, pass := range []string{"fwd", "fwdbwd"} {
		for _, mo := range models {
			b.Run(pass+"/"+mo.name+"/T=1024/Dh=32", func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Heads, cfg.HeadDim, cfg.ChunkSize = 4, 32, 16
				cfg.AttentionalBias, cfg.Retention, cfg.HuberLearned = mo.bias, mo.retention, mo.bias == BiasHuber
				runBench(b, []*lmmBench{newLMMBench(b, cfg, 1024, pass == "fwdbwd")})
			})
		}
	}
}
