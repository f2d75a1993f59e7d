package gla

import (
	"math"

	"github.com/engramlx/engram/internal/field"
)

// Mode names the implementation the layer trains with.
const (
	ModeChunk = "chunk" // chunkwise-parallel (Chunked): the default, for training
	ModeNaive = "naive" // per-token recurrence (Naive): the reference
)

// Config holds the hyper-parameters of a GLA layer, with flash-linear-attention's GatedLinearAttention
// defaults. Widths are fractions of d_model as in fla: the query/key width of all heads together is
// d_model * expand_k, the value width d_model * expand_v. Decode YAML into DefaultConfig() so omitted
// keys keep their defaults.
type Config struct {
	Heads   int     `yaml:"heads"`    // H
	ExpandK float64 `yaml:"expand_k"` // H d_k = d_model * expand_k
	ExpandV float64 `yaml:"expand_v"` // H d_v = d_model * expand_v
	// GateLowRankDim is the inner width of the gate projection gk = W_2 (W_1 x) + b.
	GateLowRankDim int `yaml:"gate_low_rank_dim"`
	// GateLogitNormalizer divides logsigmoid(gk): the per-step decay is sigmoid(gk)^(1/normalizer).
	GateLogitNormalizer float64 `yaml:"gate_logit_normalizer"`
	// ClampMin, when < 0, floors the per-step log-decay (fla's clamp_min); 0 leaves it unclamped.
	ClampMin      float64 `yaml:"clamp_min"`
	UseOutputGate bool    `yaml:"use_output_gate"` // y = W_o (RMSNorm(o) * SiLU(W_g x)); false: W_o RMSNorm(o)
	ChunkSize     int     `yaml:"chunk_size"`      // C of the chunkwise form: 1..16 or a multiple of 16
	Mode          string  `yaml:"mode"`            // "chunk" or "naive"
	NormEps       float64 `yaml:"norm_eps"`        // eps of the output RMSNorm
}

// DefaultConfig is fla's GatedLinearAttention layer: 4 heads, keys half and values the full model
// width, a rank-16 gate projection with normaliser 16, the output gate, chunks of 64.
func DefaultConfig() Config {
	return Config{
		Heads: 4, ExpandK: 0.5, ExpandV: 1, GateLowRankDim: 16, GateLogitNormalizer: 16,
		UseOutputGate: true, ChunkSize: 64, Mode: ModeChunk, NormEps: 1e-5,
	}
}

// headDims returns d_k and d_v per head for a model of width dModel (0 when they are not whole).
func (c Config) headDims(dModel int) (dk, dv int) {
	perHead := func(expand float64) int {
		total := float64(dModel) * expand
		if c.Heads < 1 || math.Abs(total-math.Round(total)) > 1e-9 || int(math.Round(total))%c.Heads != 0 {
			return 0
		}
		return int(math.Round(total)) / c.Heads
	}
	return perHead(c.ExpandK), perHead(c.ExpandV)
}

// Validate reports the first invalid field as "gla.<yaml key> = <value>: <reason>" for a model of width
// dModel.
func (c Config) Validate(dModel int) error {
	dk, dv := c.headDims(dModel)
	switch {
	case c.Heads < 1:
		return field.Errorf("gla.heads", c.Heads, "must be >= 1")
	case !(c.ExpandK > 0) || dk < 1:
		return field.Errorf("gla.expand_k", c.ExpandK, "must be > 0 with d_model * expand_k (d_model = %d) a whole multiple of heads = %d", dModel, c.Heads)
	case !(c.ExpandV > 0) || dv < 1:
		return field.Errorf("gla.expand_v", c.ExpandV, "must be > 0 with d_model * expand_v (d_model = %d) a whole multiple of heads = %d", dModel, c.Heads)
	case c.GateLowRankDim < 1:
		return field.Errorf("gla.gate_low_rank_dim", c.GateLowRankDim, "must be >= 1")
	case !(c.GateLogitNormalizer > 0):
		return field.Errorf("gla.gate_logit_normalizer", c.GateLogitNormalizer, "must be > 0")
	case !(c.ClampMin <= 0):
		return field.Errorf("gla.clamp_min", c.ClampMin, "must be < 0 (a floor on the log-decay), or 0 for none")
	case c.ChunkSize < 1 || (c.ChunkSize > SubChunk && c.ChunkSize%SubChunk != 0):
		return field.Errorf("gla.chunk_size", c.ChunkSize, "want 1..%d or a multiple of %d (the sub-chunk length)", SubChunk, SubChunk)
	case c.Mode != ModeChunk && c.Mode != ModeNaive:
		return field.Errorf("gla.mode", c.Mode, "want %q or %q", ModeChunk, ModeNaive)
	case !(c.NormEps > 0):
		return field.Errorf("gla.norm_eps", c.NormEps, "must be > 0")
	}
	return nil
}
