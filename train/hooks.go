package train

import (
	"io"
	"os"

	"context"
	"fmt"
	"golang.org/x/term"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	mltrain "github.com/gomlx/gomlx/ml/train"
	"github.com/schollz/progressbar/v3"
)

// hooks are what runs after every training step: progress, metrics lines, evaluation, checkpoints and
// the interrupt check.
type hooks struct {
	r       *Runner
	ctx     context.Context
	evalDS  *indexedDataset
	bar     *progressbar.ProgressBar
	started time.Time
	first   int // first optimizer step of this session
	tokens  int // tokens per optimizer step
}

func (r *Runner) newHooks(ctx context.Context, evalDS *indexedDataset) *hooks {
	t := r.Exp.Train
	h := &hooks{r: r, ctx: ctx, evalDS: evalDS, started: time.Now(), first: r.GlobalStep(),
		tokens: t.BatchSize * t.AccumSteps * r.Exp.Data.SeqLen()}
	// The bar needs a terminal wide enough for its numbers; narrower ones get the plain lines a log gets.
	if r.opts.Progress && terminalWidth(r.opts.Log) >= minBarWidth {
		h.bar = progressbar.NewOptions(t.Steps,
			progressbar.OptionSetWriter(r.opts.Log),
			progressbar.OptionSetDescription(r.Exp.Name),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
		_ = h.bar.Set(h.first)
	}
	return h
}

func (h *hooks) close() {
	if h.bar != nil {
		_ = h.bar.Finish()
	}
}

func (h *hooks) onStep(loop *mltrain.Loop, metrics []*tensors.Tensor) error {
	t := h.r.Exp.Train
	if (loop.LoopStep+1)%t.AccumSteps != 0 {
		return nil // mid-accumulation: nothing was applied yet, and stopping here would lose the partial sums
	}
	step := h.r.GlobalStep()
	elapsed := time.Since(h.started).Seconds()
	tokensPerSec := float64((step-h.first)*h.tokens) / max(elapsed, 1e-9)
	loss, acc := scalar(metrics[0]), scalar(metrics[2])
	if h.bar != nil {
		h.bar.Describe(fmt.Sprintf("loss %.4f acc %.3f lr %.1e %.0f tok/s", loss, acc, h.r.stat("learning_rate"), tokensPerSec))
		_ = h.bar.Set(step)
	}
	line := map[string]any{"step": step, "loss": loss, "loss_ema": scalar(metrics[1]), "accuracy": acc,
		"tokens_per_sec": tokensPerSec, "learning_rate": h.r.stat("learning_rate"), "grad_norm": h.r.stat("grad_norm")}
	for name, value := range h.r.layerStats() {
		line[name] = value
	}
	evalNow := t.EvalEvery > 0 && step%t.EvalEvery == 0 && step < t.Steps
	if evalNow {
		evalLoss, evalAcc, err := h.r.evaluate(h.evalDS)
		if err != nil {
			return err
		}
		line["eval_loss"], line["eval_accuracy"] = evalLoss, evalAcc
		if h.bar != nil { // each intermediate eval on its own line above the bar
			_ = h.bar.Clear()
			h.r.logf("step %d/%d  eval_loss %.4f  eval_acc %.3f", step, t.Steps, evalLoss, evalAcc)
		}
	}
	if step%t.LogEvery == 0 || evalNow {
		if err := h.r.metrics.Write(line); err != nil {
			return err
		}
		if h.bar == nil {
			msg := fmt.Sprintf("step %d/%d  loss %.4f  acc %.3f  lr %.2e  %.0f tok/s", step, t.Steps, loss, acc, line["learning_rate"], tokensPerSec)
			if evalNow {
				msg += fmt.Sprintf("  eval_loss %.4f  eval_acc %.3f", line["eval_loss"], line["eval_accuracy"])
			}
			h.r.logf("%s", msg)
		}
	}
	if h.r.opts.AfterStep != nil {
		h.r.opts.AfterStep(step)
	}
	if h.ctx.Err() != nil {
		if err := h.r.ckpt.Save(h.r.checkpointInfo()); err != nil {
			return fmt.Errorf("saving the checkpoint on interrupt: %w", err)
		}
		h.r.logf("\ninterrupted at step %d: checkpoint saved in %s", step, h.r.ckpt.Dir())
		return ErrInterrupted
	}
	if t.CheckpointEvery > 0 && step%t.CheckpointEvery == 0 && step < t.Steps {
		return h.r.ckpt.Save(h.r.checkpointInfo())
	}
	return nil
}

// stat reads a value the optimizer records each step (learning_rate, grad_norm).
func (r *Runner) stat(name string) float64 {
	v := r.Store.GetVariable(statsScope + "/" + name)
	if v == nil || !v.HasValue() {
		return 0
	}
	value, err := v.Value()
	if err != nil {
		return 0
	}
	return scalar(value)
}

// minBarWidth is the narrowest terminal the progress bar is drawn in (its description and counters
// take about 70 columns).
const minBarWidth = 90

// terminalWidth is w's terminal width in columns, 0 when w is not a terminal.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}
