// Package export writes a trained run as files other tools and later processes read: its weights as
// model.safetensors + config.json (checkpoints.Export's format, with the `rmt` section when the model
// has recurrent memory tokens), and the carried state of the model after a prompt as
// state.safetensors; Load reads a weights export back into a sequence model.
//
// Everything goes through model.Sequence, so a model wrapped in recurrent memory tokens is exported
// with its learned initial memory (rmt/memory) and its settings, and its state is the memory (plus the
// backbone's state when carried), never the bare backbone's.
package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
	"github.com/engramlx/engram/train"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Conventions is the manifest's block that lets other frameworks rebuild the model from config.json and
// model.safetensors alone.
var Conventions = map[string]string{
	"names":       "tensor names are Engram scope paths with '.' for '/', e.g. layer_0.attention.q.weight; config.json's tensors maps each to its scope",
	"dense":       "dense weights are stored [in, out]: y = x @ W (transpose for torch.nn.Linear, whose weight is [out, in]); layers have no biases",
	"embedding":   "embed.embeddings is [vocab, d_model]; head.weight is [d_model, vocab] unless tie_embeddings, which reuses embed.embeddings transposed",
	"attention":   "attention / swa: q, k, v = x W each [in, heads*head_dim], split head-major (channel h*head_dim + d); with short_conv > 0 each goes through its causal depthwise conv (no activation) before RoPE; softmax(q k^T / sqrt(head_dim)) with a causal mask (swa: a query sees the last window positions, itself included); concatenated heads times output.weight",
	"norm":        "RMSNorm: x * rsqrt(mean(x^2) + norm_eps) * weight",
	"block":       "each layer: h += mixer(RMSNorm(h)); h += SwiGLU(RMSNorm(h)) when the MLP exists; then a final RMSNorm and the head",
	"mlp_hidden":  "-1: no MLP sub-block; 0: 8/3 d_model rounded up to a multiple of 8; SwiGLU(x) = (silu(x W_gate) * (x W_up)) W_down",
	"rope":        "RoPE pairs (x_i, x_{i+head_dim/2}) (the rotate-half convention) rotated by p * rope_base^(-2i/head_dim) at absolute position p",
	"short_conv":  "causal depthwise conv weight [K, channels]: y_t = sum_j w[j] x_{t-K+1+j}; tap j = K-1 multiplies the current token (PyTorch Conv1d's [channels, 1, K] with the same tap order)",
	"state":       "state.safetensors holds the carried state in the order of the model's StateSpecs, names like layer_0/S",
	"layer_types": "model.layers lists mixer types; a mapping {type, <section>} overrides that layer's section; sections no layer reads are omitted",
}

// StateFile is the name of a state export in its directory; PromptLogitsFile, beside it, holds the prompt's
// token ids ("ids" [T] int32) and the model's logits over it from the initial state ("logits" [T, vocab]),
// so a port of the model to another framework can check itself (docs/rebuild_quickstart.py does).
const (
	StateFile        = "state.safetensors"
	PromptLogitsFile = "prompt_logits.safetensors"
)

// Model is a sequence model with its weights: a reopened run or a loaded export.
type Model struct {
	Seq     model.Sequence
	Stack   *model.Model
	Config  model.Config
	RMT     model.RMTConfig
	Store   *mlmodel.Store
	Backend compute.Backend
	// TrainData is the training run's data section as config.json's source.data holds it (nil when
	// unknown): the task the model learned.
	TrainData json.RawMessage
	built     bool // Build ran: every variable exists
}

// FromRun is the model of a run opened with train.Open, set up for streaming (model.Config.ForStreaming:
// the same weights, a state that continues exactly after a prompt of any length).
func FromRun(r *train.Runner) (*Model, error) {
	cfg := r.Exp.Model.ForStreaming()
	seq, stack, err := model.NewSequence(cfg, r.Exp.RMT)
	if err != nil {
		return nil, err
	}
	trainData, err := checkpoints.EncodeArchitecture(r.Exp.Data)
	if err != nil {
		return nil, err
	}
	return &Model{Seq: seq, Stack: stack, Config: cfg, RMT: r.Exp.RMT, Store: r.Store, Backend: r.Backend, TrainData: trainData}, nil
}

// Architecture encodes what a state belongs to: the model config (the sections its layers read), and
// with a wrapper both sections.
func (m *Model) Architecture() (json.RawMessage, error) {
	if !m.RMT.Enabled {
		return checkpoints.EncodeArchitecture(m.Config.InUse())
	}
	return checkpoints.EncodeArchitecture(struct {
		Model model.Config    `yaml:"model"`
		RMT   model.RMTConfig `yaml:"rmt"`
	}{m.Config.InUse(), m.RMT})
}

// Stepper compiles (ids [B, T], state...) -> (logits [B, T, V], next state...) over the model's
// variables; an empty state starts the sequence from the model's initial state.
func (m *Model) Stepper() (*mlmodel.Exec, error) {
	return mlmodel.NewExec(m.Backend, m.Store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		var state []*Node
		if len(in) > 1 {
			state = in[1:]
		}
		hidden, next := m.Seq.Hidden(scope, in[0], state)
		return append([]*Node{m.Seq.Logits(scope.ResetVisited(), hidden)}, next...)
	})
}

// Run feeds ids [1, n] from state (nil: the start) through a stepper and returns the logits and the
// next state.
func Run(step *mlmodel.Exec, ids []int32, state []*tensors.Tensor) (*tensors.Tensor, []*tensors.Tensor, error) {
	args := []any{tensors.FromFlatDataAndDimensions(ids, 1, len(ids))}
	for _, s := range state {
		args = append(args, s)
	}
	outs, err := step.Call(args...)
	if err != nil {
		return nil, nil, err
	}
	return outs[0], outs[1:], nil
}

// Weights builds the model's graph once (creating every variable, the wrapper's included) and exports
// its trainable variables to out. run and step name the source in config.json.
func Weights(m *Model, out, dtype, run string, step int) (*checkpoints.Manifest, error) {
	if err := m.Build(); err != nil {
		return nil, err
	}
	tok := checkpoints.Tokenizer{Type: "ids", Vocab: m.Config.Vocab}
	if m.Config.Vocab >= data.ByteVocab {
		tok = checkpoints.ByteTokenizer()
	}
	opts := checkpoints.ExportOptions{DType: dtype, Architecture: m.Config, Tokenizer: tok, Source: checkpoints.Source{Run: run, Step: step, Data: m.TrainData},
		OmitSections: m.Config.UnusedSections(), Conventions: Conventions}
	if m.RMT.Enabled {
		opts.RMT = m.RMT
	}
	return checkpoints.Export(out, m.Store, opts)
}

// State runs the prompt ids from the model's initial state and writes the state after them to
// out/state.safetensors, returning the file, and the logits over the prompt to out/prompt_logits.safetensors. The prompt must be a whole number of the model's segments
// (rmt's segment_len; any length otherwise), so that a stream continued from the state cuts segments
// where one pass over the whole text would.
func State(m *Model, out string, ids []int32) (string, error) {
	if unit := m.Seq.SegmentLen(); len(ids)%unit != 0 {
		return "", fmt.Errorf("the prompt has %d tokens; the model streams whole segments of %d (rmt.segment_len), so the state must follow a multiple of %d", len(ids), unit, unit)
	}
	if limit := m.Seq.MaxContext(); limit > 0 && len(ids) > limit {
		return "", fmt.Errorf("the prompt has %d tokens; the model's attention cache holds %d", len(ids), limit)
	}
	exec, err := m.Stepper()
	if err != nil {
		return "", err
	}
	defer exec.Finalize()
	logits, state, err := Run(exec, ids, nil)
	if err != nil {
		return "", fmt.Errorf("running the prompt: %w", err)
	}
	arch, err := m.Architecture()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	file := filepath.Join(out, StateFile)
	meta := checkpoints.StateMeta{Tokens: len(ids), Architecture: arch}
	if err := checkpoints.SaveState(file, m.Seq.StateSpecs(1), state, meta); err != nil {
		return "", err
	}
	perToken, err := dropBatchAxis(logits)
	if err != nil {
		return "", err
	}
	md := map[string]string{"format": "engram-prompt-logits", "engram_version": checkpoints.EngramVersion()}
	if err := checkpoints.SaveTensors(filepath.Join(out, PromptLogitsFile), []string{"ids", "logits"},
		[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(append([]int32{}, ids...), len(ids)), perToken}, md); err != nil {
		return "", err
	}
	return file, nil
}

// dropBatchAxis returns t [1, ...] as [...], in its own dtype.
func dropBatchAxis(t *tensors.Tensor) (*tensors.Tensor, error) {
	dims := t.Shape().Dimensions[1:]
	switch t.DType() {
	case dtypes.Float32:
		flat, err := tensors.CopyFlatData[float32](t)
		return tensors.FromFlatDataAndDimensions(flat, dims...), err
	case dtypes.Float64:
		flat, err := tensors.CopyFlatData[float64](t)
		return tensors.FromFlatDataAndDimensions(flat, dims...), err
	}
	return nil, fmt.Errorf("logits of dtype %s", t.DType())
}

// LoadState reads a state written by State for this model (an error names any architecture difference).
func LoadState(m *Model, file string) ([]*tensors.Tensor, checkpoints.StateMeta, error) {
	arch, err := m.Architecture()
	if err != nil {
		return nil, checkpoints.StateMeta{}, err
	}
	return checkpoints.LoadState(file, m.Seq.StateSpecs(1), arch)
}

// Load reads a weights export (model.safetensors + config.json) into a fresh store and rebuilds its
// sequence model on backend; Check runs once the model's graph has been built.
func Load(dir string, backend compute.Backend) (*Model, *checkpoints.Imported, error) {
	imp, err := checkpoints.Import(dir)
	if err != nil {
		return nil, nil, err
	}
	cfg := model.DefaultConfig()
	if err := configs.DecodeSavedModel(imp.Manifest.Architecture, &cfg); err != nil {
		return nil, nil, fmt.Errorf("%s: architecture: %w", filepath.Join(dir, checkpoints.ConfigFile), err)
	}
	wrap := model.DefaultRMTConfig()
	if _, err := imp.DecodeRMT(&wrap); err != nil {
		return nil, nil, err
	}
	cfg = cfg.ForStreaming()
	seq, stack, err := model.NewSequence(cfg, wrap)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	store, err := imp.NewStore(stack.DType)
	if err != nil {
		return nil, nil, err
	}
	return &Model{Seq: seq, Stack: stack, Config: cfg, RMT: wrap, Store: store, Backend: backend, TrainData: imp.Manifest.Source.Data}, imp, nil
}

// Build (once per Model) compiles and runs the model on a short input, creating every variable (from the
// checkpoint or the import the store reads from).
func (m *Model) Build() error {
	if m.built {
		return nil
	}
	exec, err := m.Stepper()
	if err != nil {
		return err
	}
	defer exec.Finalize()
	probe := make([]int32, max(1, m.Seq.SegmentLen()))
	if _, _, err := Run(exec, probe, nil); err != nil {
		return fmt.Errorf("building the model: %w", err)
	}
	m.built = true
	return nil
}

// FLAImport names flash-linear-attention weights that replace some gated_deltanet layers' on export
// (File "" = none): see ImportFLA.
type FLAImport struct{ File, Layers, Prefix string }

// RunWeights exports a reopened run's weights (optionally with fla layers imported) to out and returns
// the line to print.
func RunWeights(r *train.Runner, out, dtype string, fla FLAImport) ([]string, error) {
	m, err := FromRun(r)
	if err != nil {
		return nil, err
	}
	var lines []string
	if fla.File != "" {
		if err := m.Build(); err != nil {
			return nil, err
		}
		imported, err := ImportFLA(m, fla.File, fla.Layers, fla.Prefix)
		if err != nil {
			return nil, err
		}
		lines = append(lines, imported...)
	}
	info, err := train.ReadInfo(filepath.Join(r.Dir, "checkpoints"))
	if err != nil {
		return nil, err
	}
	man, err := Weights(m, out, dtype, r.Exp.Name, info.Step)
	if err != nil {
		return nil, err
	}
	return append(lines, fmt.Sprintf("%s: %d tensors, %d bytes (%s, step %d) + %s", filepath.Join(out, checkpoints.WeightsFile),
		len(man.Tensors), man.WeightsSize, man.DType, info.Step, checkpoints.ConfigFile)), nil
}

// RunState exports the state of a reopened run after a prompt (text through the byte tokenizer, or a
// comma-separated id list) to out and returns the line to print.
func RunState(r *train.Runner, out, prompt, idList string) (string, error) {
	ids, err := PromptIDs(prompt, idList, r.Model.Config.Vocab)
	if err != nil {
		return "", err
	}
	m, err := FromRun(r)
	if err != nil {
		return "", err
	}
	file, err := State(m, out, ids)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d state tensors after %d prompt tokens (their logits: %s)", file, len(m.Seq.StateSpecs(1)), len(ids), PromptLogitsFile), nil
}
