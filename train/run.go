// Package train runs an experiment: the training loop on GoMLX's ml/train Trainer and Loop with our
// AdamW (warm-up + cosine, global-norm clipping, gradient accumulation), periodic held-apart evaluation,
// metrics as JSONL, a progress bar, checkpoints every N steps keeping the last K, exact resume (same
// step, same data position) and a clean stop on interrupt.
//
// A run lives in <runs_dir>/<name>/: config.yaml (the resolved experiment), metrics.jsonl,
// checkpoints/, loss.png and, at the end, summary.json.
package train

import (
	"context"
	"errors"
	"fmt"
	"github.com/engramlx/engram/internal/panics"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/internal/backend"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	mltrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// ErrInterrupted is returned by Run when its context was cancelled: a checkpoint was saved first.
var ErrInterrupted = errors.New("training interrupted; checkpoint saved, run the same command again to resume")

// Options are the knobs of one invocation that are not part of the experiment.
type Options struct {
	// Log receives human-readable lines (default os.Stderr).
	Log io.Writer
	// Progress draws a progress bar (only sensible when Log is a terminal).
	Progress bool
	// AfterStep, when set, is called after every optimizer step (tests use it to interrupt at step k).
	AfterStep func(step int)
}

// Runner holds one run's state.
type Runner struct {
	Exp     configs.Experiment
	Dir     string
	Model   *model.Model   // the decoder stack
	Seq     model.Sequence // what is trained and evaluated: Model, or Model inside recurrent memory tokens
	Store   *mlmodel.Store
	Backend compute.Backend
	Choice  backend.Choice

	opts     Options
	trainer  *mltrain.Trainer
	ckpt     *checkpoints.Manager
	imported *checkpoints.Imported // train.init_from's export, checked once describe built the model
	metrics  *metricsLog
	start    time.Time
	lastSave time.Time
}

// Run trains exp to its last step (resuming when its run directory has a checkpoint) and returns the
// summary. On ctx cancellation it saves a checkpoint and returns ErrInterrupted.
func Run(ctx context.Context, exp configs.Experiment, opts Options) (*Summary, error) {
	r, err := NewRunner(exp, opts)
	if err != nil {
		return nil, err
	}
	return r.Train(ctx)
}

// NewRunner validates exp, creates or reopens its run directory, chooses the backend, builds the model
// and loads the latest checkpoint if there is one.
func NewRunner(exp configs.Experiment, opts Options) (*Runner, error) {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if err := exp.Validate(); err != nil {
		return nil, err
	}
	seq, m, err := model.NewSequence(exp.Model, exp.RMT)
	if err != nil {
		return nil, err
	}
	if _, generated := exp.Data.Generator(); !generated && (exp.Data.Train.Resets() || exp.Data.Eval.Resets()) {
		if err := model.CheckDocuments(seq); err != nil {
			return nil, fmt.Errorf("packed rows (mode: pack) restart the model at every document start: %w", err)
		}
	}
	r := &Runner{Exp: exp, Model: m, Seq: seq, opts: opts, Dir: filepath.Join(exp.RunsDir, exp.Name)}
	for _, notice := range exp.Notices {
		r.logf("note: %s", notice)
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := r.checkSavedConfig(); err != nil {
		return nil, err
	}
	r.Backend, r.Choice, err = backend.New(exp.Backend, r.logf)
	if err != nil {
		return nil, err
	}
	r.Store = mlmodel.NewStore()
	r.Store.SetParam(mlmodel.ParamInitialSeed, int64(exp.Seed))
	if r.ckpt, err = openCheckpoints(r.Store, filepath.Join(r.Dir, "checkpoints"), exp.Train.KeepCheckpoints); err != nil {
		return nil, err
	}
	if err := r.initFrom(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Runner) logf(format string, args ...any) { fmt.Fprintf(r.opts.Log, format+"\n", args...) }

// graphs builds the GoMLX trainer with the model, loss and metrics.
func (r *Runner) graphs() {
	modelFn := func(scope *mlmodel.Scope, inputs []*Node) []*Node {
		readVariablesAsParameters(scope.Store(), inputs[0].Graph())
		var docStart *Node // rows packing documents (data.mode: pack with reset_at_document_start)
		if len(inputs) > 2 {
			docStart = inputs[2]
		}
		return []*Node{model.LabelledLogitsDocuments(r.Seq, scope, inputs[0], inputs[1], docStart)}
	}
	lossFn := func(labels, predictions []*Node) *Node {
		loss, _ := model.CrossEntropy(predictions[0], labels[0], labels[1])
		return loss
	}
	accuracy := func(_ *mlmodel.Scope, labels, predictions []*Node) *Node {
		_, acc := model.CrossEntropy(predictions[0], labels[0], labels[1])
		return acc
	}
	t := r.Exp.Train
	opt := &AdamW{
		LearningRate: t.LearningRate, WarmupSteps: t.WarmupSteps, TotalSteps: t.Steps, MinLRRatio: t.MinLRRatio,
		Beta1: t.Beta1, Beta2: t.Beta2, Epsilon: t.Epsilon, WeightDecay: t.WeightDecay, ClipNorm: t.ClipNorm,
		NoDecay: r.Model.NoWeightDecay(),
	}
	r.trainer = mltrain.NewTrainer(r.Backend, r.Store, modelFn, lossFn, opt,
		[]metric.Interface{metric.NewExponentialMovingAverageMetric("Accuracy", "acc", "accuracy", accuracy, nil, 0.05)},
		[]metric.Interface{metric.NewMeanMetric("Accuracy", "acc", "accuracy", accuracy, nil)})
	if t.AccumSteps > 1 {
		if err := r.trainer.AccumulateGradients(t.AccumSteps); err != nil {
			panic(err)
		}
	}
}

// readVariablesAsParameters makes every variable of store that has a value a parameter of g, so the
// compiled graph reads its current value at each execution.
//
// GoMLX embeds variables as constants in graphs built outside training mode when the backend prefers it
// (compute v0.1.14's Go backend does, to pre-pack constant matmul operands). The trainer's eval graph is
// compiled once, at the first in-training evaluation, so it went on scoring the weights of that moment,
// and its metric accumulators restarted from their baked-in values, for the rest of the run. A variable's
// graph node is made on first use, so creating them here, in training mode, before the model runs keeps
// them parameters; the graph's training flag is restored before the model sees it (MoM reads it).
// TestInTrainingEvalEqualsCheckpointEval checks it.
func readVariablesAsParameters(store *mlmodel.Store, g *Graph) {
	training := store.IsTraining(g)
	store.SetTraining(g, true)
	for v := range store.IterVariables() {
		if v.HasValue() {
			v.ValueGraph(g)
		}
	}
	store.SetTraining(g, training)
}

// GlobalStep is the number of optimizer steps taken so far.
func (r *Runner) GlobalStep() int { return int(optimizer.GetGlobalStep(r.Store)) }

// Train runs the remaining steps.
func (r *Runner) Train(ctx context.Context) (summary *Summary, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panics.AsError(p)
		}
	}()
	r.start = time.Now()
	r.graphs()
	if err := r.describe(); err != nil {
		return nil, err
	}
	step := r.GlobalStep()
	if step > 0 {
		r.logf("resuming %s from step %d (data position: batch %d)", r.Dir, step, step*r.Exp.Train.AccumSteps)
	}
	if r.metrics, err = openMetrics(filepath.Join(r.Dir, "metrics.jsonl"), step); err != nil {
		return nil, err
	}
	defer r.metrics.Close()
	trainSrc, evalSrc, err := Sources(r.Exp)
	if err != nil {
		return nil, err
	}
	t := r.Exp.Train
	remaining := t.Steps - step
	if remaining > 0 {
		loop := mltrain.NewLoop(r.trainer)
		ds := &indexedDataset{src: trainSrc, vocab: r.Model.Config.Vocab, slots: trainSrc.LabelSlots(), start: int64(loop.LoopStep), limit: -1}
		evalDS := &indexedDataset{src: evalSrc, vocab: r.Model.Config.Vocab, slots: evalSrc.LabelSlots(), limit: int64(t.EvalBatches)}
		hooks := r.newHooks(ctx, evalDS)
		loop.OnStep("engram", 0, hooks.onStep)
		_, err := loop.RunSteps(ds, remaining*t.AccumSteps)
		hooks.close()
		if errors.Is(err, ErrInterrupted) {
			r.plot()
			return nil, ErrInterrupted
		}
		if err != nil {
			return nil, err
		}
		if err := r.ckpt.Save(r.checkpointInfo()); err != nil {
			return nil, err
		}
	}
	evalDS := &indexedDataset{src: evalSrc, vocab: r.Model.Config.Vocab, slots: evalSrc.LabelSlots(), limit: int64(t.EvalBatches)}
	evalLoss, evalAcc, err := r.evaluate(evalDS)
	if err != nil {
		return nil, err
	}
	r.plot()
	return r.writeSummary(evalLoss, evalAcc)
}

// evaluate returns the mean loss and accuracy over the eval dataset.
func (r *Runner) evaluate(ds *indexedDataset) (loss, accuracy float64, err error) {
	results, err := r.trainer.Eval(ds)
	if err != nil {
		return 0, 0, fmt.Errorf("evaluation: %w", err)
	}
	return scalar(results[0]), scalar(results[1]), nil
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// Open reopens an existing run directory for evaluation or export: its saved config, its model and a
// store that loads the latest checkpoint's values as the variables are created. It fails, naming the
// directory, when there is no saved config or no checkpoint.
func Open(runDir string, opts Options) (*Runner, error) {
	file := filepath.Join(runDir, "config.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s is not a run directory: %w", runDir, err)
	}
	exp, err := configs.ParseSaved(file, src)
	if err != nil {
		return nil, err
	}
	if _, err := ReadInfo(filepath.Join(runDir, "checkpoints")); err != nil {
		return nil, fmt.Errorf("%s has no complete checkpoint (checkpoints/engram.json): %w", runDir, err)
	}
	exp.RunsDir, exp.Name = filepath.Dir(filepath.Clean(runDir)), filepath.Base(filepath.Clean(runDir))
	return NewRunner(exp, opts)
}
