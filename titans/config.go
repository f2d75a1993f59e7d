package titans

import (
	"fmt"

	"github.com/engramlx/engram/internal/field"
)

// Variants selectable by Config.Variant (model/ registers them as titans_lmm, titans_mac, titans_mag,
// titans_mal).
const (
	VariantLMM = "lmm" // the neural memory alone
	VariantMAC = "mac" // memory as a context (paper section 4.1)
	VariantMAG = "mag" // memory as a gate (section 4.2)
	VariantMAL = "mal" // memory as a layer (section 4.3)
)

// Modes selectable by Config.Mode.
const (
	ModePaper = "paper"          // the paper's equations (default)
	ModeTP    = "titans_pytorch" // lucidrains/titans-pytorch's NeuralMemory (tp.go, doc.go)
	// modeTPOld is the mode's first name, still accepted (Normalized) with a notice (Deprecations).
	modeTPOld = "tp"
)

// Config holds every hyper-parameter of the Titans mixers. YAML keys are snake_case; unknown keys are
// rejected by the strict decoder of the caller.
type Config struct {
	// Variant is the architecture the layer runs: lmm | mac | mag | mal. In a model it comes from the
	// layer type (titans_lmm, ...); VariantSetting holds what a config file says ("variant:"), which
	// must agree with the type (MixerTypes).
	Variant        string `yaml:"-"`
	VariantSetting string `yaml:"variant,omitempty"`
	Mode           string `yaml:"mode"` // paper | titans_pytorch ("tp", its old name, still works)

	Heads   int `yaml:"heads"`    // H: memory heads (and attention heads)
	HeadDim int `yaml:"head_dim"` // Dh: width of q, k, v per head; the memory maps Dh -> Dh

	MemoryDepth     int `yaml:"memory_depth"`     // L_M >= 1 layers of the memory MLP (1 = linear map)
	MemoryExpansion int `yaml:"memory_expansion"` // hidden width of a deep memory = MemoryExpansion * HeadDim

	ChunkSize int `yaml:"chunk_size"` // b: tokens per inner mini-batch (gradients at chunk-start weights)
	// TTTBatchSize (tp mode only): titans-pytorch's batch_size. 0 (its default, None) takes every inner
	// gradient at the learned initial weights, in every call; otherwise tokens per TTT mini-batch, a
	// multiple of ChunkSize, whose gradients are taken at the batch's start weights (the weights still
	// change per chunk).
	TTTBatchSize int `yaml:"ttt_batch_size"`
	// CarryPartialChunk carries the stream's current partial chunk in the state ("pending" tokens and their
	// count; MAC: its partial segment), so that chunks follow the stream rather than each call and one
	// call equals any split into chained calls, for every variant. Paper mode: the state then holds the
	// weights, momentum and conv caches at the partial chunk's start, and a call re-runs the pending
	// tokens; tp mode (needs TTTBatchSize 0): titans-pytorch's cached remainder. Costs ChunkSize-1 extra
	// tokens of compute per call.
	CarryPartialChunk bool    `yaml:"carry_partial_chunk"`
	MaxLR             float64 `yaml:"max_lr"`     // theta_t = MaxLR * sigmoid(.)
	GradClamp         float64 `yaml:"grad_clamp"` // per-token inner-gradient norm clamp; 0 = off
	// OutputGate gates the memory read-out by sigmoid(x W_g): per head channel in the paper mode; in the tp
	// mode per head, from the retrieve-normed input (titans-pytorch's retrieve_gate).
	OutputGate bool `yaml:"output_gate"`
	ConvKernel int  `yaml:"conv_kernel"` // short causal depthwise conv after the q, k, v projections (paper mode only)

	PersistentTokens int `yaml:"persistent_tokens"` // N_p learned tokens visible to the attention (MAC/MAG/MAL)
	Window           int `yaml:"window"`            // sliding-window length of MAG / MAL attention (tokens, self included)
	SegmentSize      int `yaml:"segment_size"`      // MAC segment length; a multiple of ChunkSize

	// Miras (arXiv 2504.13173; doc.go, miras.go), paper mode only: the memory's inner objective and
	// retention. Empty means l2 for both, the Titans memory. The layer types moneta, yaad and memora set
	// them; a section that says otherwise for such a layer is an error.
	AttentionalBias string  `yaml:"attentional_bias,omitempty"` // l2 | lp | huber
	Retention       string  `yaml:"retention,omitempty"`        // l2 | lq | kl | elastic_net
	LpP             float64 `yaml:"lp_p"`                       // p of the lp bias, >= 1 (Moneta: 3)
	LqQ             float64 `yaml:"lq_q"`                       // q of the lq retention, > 1 (Moneta: 4)
	// HuberDelta is the Huber threshold delta; with HuberLearned it is the initial value of the
	// data-dependent delta_t = softplus(x w_delta + b_delta + softplus^-1(HuberDelta)) per head and token.
	HuberDelta   float64 `yaml:"huber_delta"`
	HuberLearned bool    `yaml:"huber_learned"`
	ElasticL1    float64 `yaml:"elastic_l1"` // the l1 weight (soft threshold) of the elastic_net retention, >= 0
	// MirasExactReads makes every token of a retention other than l2 read its exact weights phi(A_t), built
	// per token (slow: about 20x Titans); false (the default) reads the chunk-boundary form (doc.go).
	MirasExactReads bool `yaml:"miras_exact_reads,omitempty"`

	// NormEps is the epsilon of the RMS and L2 normalisations of the paper mode. The tp mode uses
	// titans-pytorch's: the dtype's machine epsilon for its RMSNorms, 1e-5 for the memory's LayerNorm.
	NormEps float64 `yaml:"norm_eps"`
}

// DefaultConfig returns the defaults: a 2-layer memory over 4 heads of 32, chunks of 16, segments of 64.
func DefaultConfig() Config {
	return Config{
		Variant:          VariantLMM,
		Mode:             ModePaper,
		Heads:            4,
		HeadDim:          32,
		MemoryDepth:      2,
		MemoryExpansion:  2,
		ChunkSize:        16,
		TTTBatchSize:     64,
		MaxLR:            0.05,
		GradClamp:        1,
		OutputGate:       true,
		ConvKernel:       4,
		PersistentTokens: 4,
		Window:           64,
		SegmentSize:      64,
		LpP:              3,
		LqQ:              4,
		HuberDelta:       1,
		ElasticL1:        0.01,
		NormEps:          1e-6,
	}
}

// Normalized returns c with the old mode name "tp" replaced by "titans_pytorch".
func (c Config) Normalized() Config {
	if c.Mode == modeTPOld {
		c.Mode = ModeTP
	}
	return c
}

// Deprecations are the notices for old names c uses.
func (c Config) Deprecations() []string {
	if c.Mode == modeTPOld {
		return []string{`titans.mode "tp" is now named "titans_pytorch" (it reads as tensor parallel); "tp" keeps working`}
	}
	return nil
}

// Validate reports the first invalid field, naming it and its value.
func (c Config) Validate() error {
	c = c.Normalized()
	switch c.Variant {
	case VariantLMM, VariantMAC, VariantMAG, VariantMAL:
	default:
		return field.Errorf("titans.variant", c.Variant, "want one of lmm, mac, mag, mal")
	}
	switch c.Mode {
	case ModePaper:
	case ModeTP:
		if c.ChunkSize >= 1 && c.TTTBatchSize != 0 && (c.TTTBatchSize < c.ChunkSize || c.TTTBatchSize%c.ChunkSize != 0) {
			return field.Errorf("titans.ttt_batch_size", c.TTTBatchSize, "must be 0 or a positive multiple of chunk_size %d in mode titans_pytorch", c.ChunkSize)
		}
		if c.CarryPartialChunk && c.TTTBatchSize != 0 {
			return field.Errorf("titans.carry_partial_chunk", c.CarryPartialChunk, "needs ttt_batch_size 0 (TTT batches are cut from each call), got %d", c.TTTBatchSize)
		}
	default:
		return field.Errorf("titans.mode", c.Mode, "want paper or titans_pytorch")
	}
	positive := []struct {
		name  string
		value int
	}{
		{"heads", c.Heads}, {"head_dim", c.HeadDim}, {"memory_depth", c.MemoryDepth},
		{"memory_expansion", c.MemoryExpansion}, {"chunk_size", c.ChunkSize}, {"conv_kernel", c.ConvKernel},
	}
	for _, p := range positive {
		if p.value < 1 {
			return field.Errorf("titans."+p.name, p.value, "must be >= 1")
		}
	}
	if !(c.MaxLR > 0) {
		return field.Errorf("titans.max_lr", c.MaxLR, "must be > 0")
	}
	if c.GradClamp < 0 {
		return field.Errorf("titans.grad_clamp", c.GradClamp, "must be >= 0 (0 = off)")
	}
	if !(c.NormEps > 0) {
		return field.Errorf("titans.norm_eps", c.NormEps, "must be > 0")
	}
	if c.PersistentTokens < 0 {
		return field.Errorf("titans.persistent_tokens", c.PersistentTokens, "must be >= 0")
	}
	if err := c.validateMiras(); err != nil {
		return err
	}
	switch c.Variant {
	case VariantMAG, VariantMAL:
		if c.Window < 2 {
			return field.Errorf("titans.window", c.Window, "must be >= 2 for variant %s", c.Variant)
		}
	case VariantMAC:
		if c.SegmentSize < 1 || c.SegmentSize%c.ChunkSize != 0 {
			return field.Errorf("titans.segment_size", c.SegmentSize, "must be a positive multiple of chunk_size %d", c.ChunkSize)
		}
	}
	return nil
}

// stateDims returns the (in, out) widths of every fast weight: the memory layers, then in tp mode the
// LayerNorm scale gamma as [1, Dh].
func (c Config) stateDims() [][2]int {
	dims := c.memoryDims()
	if c.Mode == ModeTP {
		dims = append(dims, [2]int{1, c.HeadDim})
	}
	return dims
}

// stateName is the state name of fast weight l ("w" or "s" prefix): w0, w1, ..., w_gamma.
func (c Config) stateName(prefix string, l int) string {
	if l == c.MemoryDepth {
		return prefix + "_gamma"
	}
	return fmt.Sprintf("%s%d", prefix, l)
}

// memoryDims returns the (in, out) widths of each memory layer: Dh -> E*Dh -> ... -> Dh.
func (c Config) memoryDims() [][2]int {
	hidden := c.MemoryExpansion * c.HeadDim
	dims := make([][2]int, c.MemoryDepth)
	for l := range dims {
		in, out := hidden, hidden
		if l == 0 {
			in = c.HeadDim
		}
		if l == c.MemoryDepth-1 {
			out = c.HeadDim
		}
		dims[l] = [2]int{in, out}
	}
	return dims
}

// validateMiras checks the attentional bias, the retention and the parameters of the ones chosen.
func (c Config) validateMiras() error {
	bias, retention := c.Bias(), c.RetentionGate()
	switch bias.Kind {
	case BiasL2:
	case BiasLp:
		if !(c.LpP >= 1) {
			return field.Errorf("titans.lp_p", c.LpP, "must be >= 1 for attentional_bias lp")
		}
	case BiasHuber:
		if !(c.HuberDelta > 0) {
			return field.Errorf("titans.huber_delta", c.HuberDelta, "must be > 0 for attentional_bias huber")
		}
	default:
		return field.Errorf("titans.attentional_bias", c.AttentionalBias, "want one of l2, lp, huber")
	}
	if c.HuberLearned && bias.Kind != BiasHuber {
		return field.Errorf("titans.huber_learned", c.HuberLearned, "needs attentional_bias huber, got %s", bias.Kind)
	}
	switch retention.Kind {
	case RetentionL2:
	case RetentionLq:
		if !(c.LqQ > 1) {
			return field.Errorf("titans.lq_q", c.LqQ, "must be > 1 for retention lq")
		}
	case RetentionKL:
	case RetentionElasticNet:
		if !(c.ElasticL1 >= 0) {
			return field.Errorf("titans.elastic_l1", c.ElasticL1, "must be >= 0 for retention elastic_net")
		}
	default:
		return field.Errorf("titans.retention", c.Retention, "want one of l2, lq, kl, elastic_net")
	}
	if c.Normalized().Mode == ModeTP && (bias.Kind != BiasL2 || retention.Kind != RetentionL2) {
		name, value := "titans.attentional_bias", bias.Kind
		if bias.Kind == BiasL2 {
			name, value = "titans.retention", retention.Kind
		}
		return field.Errorf(name, value, "needs mode paper (mode titans_pytorch has titans-pytorch's l2 memory)")
	}
	return nil
}

// Bias is the memory's inner objective as the ops take it (an empty AttentionalBias is l2).
func (c Config) Bias() AttentionalBias {
	b := AttentionalBias{Kind: c.AttentionalBias, P: c.LpP, Delta: c.HuberDelta}
	if b.Kind == "" {
		b.Kind = BiasL2
	}
	return b
}

// RetentionGate is the memory's retention as the ops take it (an empty Retention is l2).
func (c Config) RetentionGate() Retention {
	r := Retention{Kind: c.Retention, Q: c.LqQ, L1: c.ElasticL1, ExactReads: c.MirasExactReads}
	if r.Kind == "" {
		r.Kind = RetentionL2
	}
	return r
}
