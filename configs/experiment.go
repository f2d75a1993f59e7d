// Package configs holds Engram's typed experiment configuration and the YAML files in this folder.
//
// An experiment is decoded strictly: an unknown key is an error naming the key, the file and the line.
// Overrides (`-set model.d_model=128`) are decoded by the same strict decoder, one at a time, so a
// misspelt key or a wrong-typed value names the override. Validate names the field and its value.
//
// The YAML files here are embedded in the binary (Builtin), so `train` runs its quickstart from any
// directory; every one of them is loaded and validated by a test.
package configs

import (
	"fmt"

	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
)

// Experiment is one training run: what to build, on what data, how to train and where to write.
type Experiment struct {
	Name string `yaml:"name"`
	// Seed fixes the initial weights and the data order.
	Seed uint64 `yaml:"seed"`
	// Backend: auto (default), go, go:<options>, xla or xla:<plugin>.
	Backend string `yaml:"backend"`
	// RunsDir is where runs/<name>/ is created (default "runs").
	RunsDir string          `yaml:"runs_dir"`
	Model   model.Config    `yaml:"model"`
	RMT     model.RMTConfig `yaml:"rmt"`
	Data    Data            `yaml:"data"`
	Train   Train           `yaml:"train"`
	Eval    Eval            `yaml:"eval"`
	// Notices are adjustments Parse made to the settings (a warm-up longer than the run, clamped),
	// printed when the run starts.
	Notices []string `yaml:"-"`
}

// Data chooses the training data.
type Data struct {
	// Task is a built-in generator (mqar, passkey, copy) or files: Arrow / Parquet files named by
	// Train and Eval (e.g. written by cmd/datagen or Hugging Face datasets).
	Task    string       `yaml:"task"`
	MQAR    data.MQAR    `yaml:"mqar"`
	Copy    data.Copy    `yaml:"copy"`
	Passkey data.Passkey `yaml:"passkey"`
	// MQARMix, with task mqar, trains on rows of several (seq_len, num_pairs) shapes, each batch's
	// shape drawn uniformly (Zoology's mixed training set); vocabulary and power_a come from MQAR.
	// The held-apart evaluation draws from the same mix. Token counts and state sizes use the longest.
	MQARMix []MQARShape `yaml:"mqar_mix,omitempty"`
	// PasskeyLengths, with task passkey, trains on rows of each of these lengths (mixed-length
	// training), each batch's length drawn uniformly; the other settings come from Passkey, whose
	// seq_len is then unused. Short rows put the key near the question, where a memory first learns
	// to read it; long rows teach it to hold the key. The held-apart evaluation draws from the mix.
	PasskeyLengths []int `yaml:"passkey_lengths,omitempty"`
	// For task files: the row length batches are cut to, and the training and held-apart files.
	FilesSeqLen int             `yaml:"seq_len"`
	Train       data.FileConfig `yaml:"train"`
	Eval        data.FileConfig `yaml:"eval"`
}

// Train holds the optimisation and bookkeeping settings.
type Train struct {
	Steps     int `yaml:"steps"`
	BatchSize int `yaml:"batch_size"`
	// AccumSteps > 1 accumulates gradients over that many batches per optimizer step.
	AccumSteps   int     `yaml:"accum_steps"`
	LearningRate float64 `yaml:"learning_rate"`
	// WarmupSteps of linear warm-up, then cosine decay to MinLRRatio * LearningRate at Steps.
	WarmupSteps int     `yaml:"warmup_steps"`
	MinLRRatio  float64 `yaml:"min_lr_ratio"`
	WeightDecay float64 `yaml:"weight_decay"`
	Beta1       float64 `yaml:"beta1"`
	Beta2       float64 `yaml:"beta2"`
	Epsilon     float64 `yaml:"epsilon"`
	// ClipNorm > 0 rescales the gradients so their global L2 norm is at most ClipNorm.
	ClipNorm float64 `yaml:"clip_norm"`
	// EvalEvery steps (0: only at the end) the model is evaluated on EvalBatches held-apart batches.
	EvalEvery   int `yaml:"eval_every"`
	EvalBatches int `yaml:"eval_batches"`
	// CheckpointEvery steps (0: only at the end and on interrupt) a checkpoint is written; the last
	// KeepCheckpoints are kept.
	CheckpointEvery int `yaml:"checkpoint_every"`
	KeepCheckpoints int `yaml:"keep_checkpoints"`
	// LogEvery steps a metrics line is appended to metrics.jsonl (and printed when stderr is not a terminal).
	LogEvery int `yaml:"log_every"`
	// InitFrom is an export directory (cmd/export's model.safetensors + config.json) whose weights a new
	// run starts from instead of its random initialisation; its architecture must equal the run's. A
	// run resumed from its own checkpoint ignores it.
	InitFrom string `yaml:"init_from,omitempty"`
}

// Default returns the defaults every YAML file is decoded over.
func Default() Experiment {
	return Experiment{
		Name: "run", Seed: 1, Backend: "auto", RunsDir: "runs",
		Model: model.DefaultConfig(),
		RMT:   model.DefaultRMTConfig(),
		Data: Data{Task: "mqar", MQAR: data.MQAR{Vocab: 256, SeqLen: 64, NumPairs: 4, PowerA: 0.01},
			Passkey: data.Passkey{SeqLen: 512, RandomDepth: true}},
		Train: Train{
			Steps: 1000, BatchSize: 32, AccumSteps: 1, LearningRate: 1e-3, WarmupSteps: 100, MinLRRatio: 0.1,
			WeightDecay: 0.1, Beta1: 0.9, Beta2: 0.95, Epsilon: 1e-8, ClipNorm: 1.0,
			EvalBatches: 8, KeepCheckpoints: 2, LogEvery: 10,
		},
		Eval: DefaultEval(),
	}
}

// Validate checks the whole experiment, naming the field and the value that is wrong.
func (e Experiment) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("name is empty: it names the run directory")
	}
	if err := e.Model.Validate(); err != nil {
		return err
	}
	if err := e.Data.Validate(e.Model.Vocab); err != nil {
		return err
	}
	if err := e.Eval.Validate(); err != nil {
		return err
	}
	if err := e.validateRMT(); err != nil {
		return err
	}
	t := e.Train
	switch {
	case t.Steps < 1:
		return fmt.Errorf("train.steps = %d: must be >= 1", t.Steps)
	case t.BatchSize < 1:
		return fmt.Errorf("train.batch_size = %d: must be >= 1", t.BatchSize)
	case t.AccumSteps < 1:
		return fmt.Errorf("train.accum_steps = %d: must be >= 1", t.AccumSteps)
	case t.LearningRate <= 0:
		return fmt.Errorf("train.learning_rate = %g: must be > 0", t.LearningRate)
	case t.WarmupSteps < 0 || t.WarmupSteps > t.Steps:
		return fmt.Errorf("train.warmup_steps = %d: must be in [0, train.steps = %d]", t.WarmupSteps, t.Steps)
	case t.MinLRRatio < 0 || t.MinLRRatio > 1:
		return fmt.Errorf("train.min_lr_ratio = %g: must be in [0, 1]", t.MinLRRatio)
	case t.WeightDecay < 0:
		return fmt.Errorf("train.weight_decay = %g: must be >= 0", t.WeightDecay)
	case t.Beta1 < 0 || t.Beta1 >= 1:
		return fmt.Errorf("train.beta1 = %g: must be in [0, 1)", t.Beta1)
	case t.Beta2 < 0 || t.Beta2 >= 1:
		return fmt.Errorf("train.beta2 = %g: must be in [0, 1)", t.Beta2)
	case t.Epsilon <= 0:
		return fmt.Errorf("train.epsilon = %g: must be > 0", t.Epsilon)
	case t.ClipNorm < 0:
		return fmt.Errorf("train.clip_norm = %g: must be >= 0 (0 = no clipping)", t.ClipNorm)
	case t.EvalEvery < 0 || t.EvalBatches < 1:
		return fmt.Errorf("train.eval_every = %d, train.eval_batches = %d: want eval_every >= 0 and eval_batches >= 1", t.EvalEvery, t.EvalBatches)
	case t.CheckpointEvery < 0 || t.KeepCheckpoints < 1:
		return fmt.Errorf("train.checkpoint_every = %d, train.keep_checkpoints = %d: want >= 0 and >= 1", t.CheckpointEvery, t.KeepCheckpoints)
	case t.LogEvery < 1:
		return fmt.Errorf("train.log_every = %d: must be >= 1", t.LogEvery)
	}
	return nil
}
