package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// metricsLog appends one JSON object per logged step to metrics.jsonl.
type metricsLog struct {
	file *os.File
	path string
}

// openMetrics opens metrics.jsonl for appending, first dropping lines past step (written after the
// checkpoint a resumed run restarts from), so the log never holds a step twice.
func openMetrics(path string, step int) (*metricsLog, error) {
	if body, err := os.ReadFile(path); err == nil {
		var kept bytes.Buffer
		scanner := bufio.NewScanner(bytes.NewReader(body))
		for scanner.Scan() {
			var line struct {
				Step int `json:"step"`
			}
			if json.Unmarshal(scanner.Bytes(), &line) == nil && line.Step <= step {
				kept.Write(scanner.Bytes())
				kept.WriteByte('\n')
			}
		}
		if err := fsutil.WriteFileAtomic(path, kept.Bytes()); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics log: %w", err)
	}
	return &metricsLog{file: f, path: path}, nil
}

func (m *metricsLog) Write(line map[string]any) error {
	body, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = m.file.Write(append(body, '\n'))
	return err
}

func (m *metricsLog) Close() { _ = m.file.Close() }

// ReadMetrics returns the lines of a metrics.jsonl file.
func ReadMetrics(path string) ([]map[string]float64, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []map[string]float64
	for i, raw := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if raw == "" {
			continue
		}
		line := map[string]float64{}
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, i+1, err)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// Summary is written to summary.json at the end of a run.
type Summary struct {
	Name           string  `json:"name"`
	Steps          int     `json:"steps"`
	TrainLoss      float64 `json:"train_loss"`
	TrainAccuracy  float64 `json:"train_accuracy"`
	EvalLoss       float64 `json:"eval_loss"`
	EvalAccuracy   float64 `json:"eval_accuracy"`
	EvalExamples   int     `json:"eval_examples"`
	WallSeconds    float64 `json:"wall_seconds"` // all sessions of the run
	SessionSeconds float64 `json:"session_seconds"`
	TokensPerSec   float64 `json:"tokens_per_sec"`
	Parameters     int     `json:"parameters"`
	Backend        string  `json:"backend"`
}

func (r *Runner) writeSummary(evalLoss, evalAcc float64) (*Summary, error) {
	s := &Summary{Name: r.Exp.Name, Steps: r.GlobalStep(), EvalLoss: evalLoss, EvalAccuracy: evalAcc,
		EvalExamples:   r.Exp.Train.EvalBatches * r.Exp.Train.BatchSize,
		SessionSeconds: time.Since(r.start).Seconds(), Parameters: r.parameters(), Backend: r.Choice.Config}
	if info, err := ReadInfo(r.ckpt.Dir()); err == nil {
		s.WallSeconds = info.ElapsedSecond
	}
	if lines, err := ReadMetrics(r.metrics.path); err == nil && len(lines) > 0 {
		last := lines[len(lines)-1]
		s.TrainLoss, s.TrainAccuracy, s.TokensPerSec = last["loss"], last["accuracy"], last["tokens_per_sec"]
	}
	body, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(r.Dir, "summary.json"), append(body, '\n')); err != nil {
		return nil, err
	}
	r.logf("%s: step %d  eval loss %.4f  eval accuracy %.4f (%d examples)  %.0fs  -> %s",
		s.Name, s.Steps, s.EvalLoss, s.EvalAccuracy, s.EvalExamples, s.SessionSeconds, filepath.Join(r.Dir, "summary.json"))
	return s, nil
}

// parameters counts the model's trainable parameters.
func (r *Runner) parameters() int {
	total := 0
	for v := range r.Store.IterVariables() {
		if v.Trainable {
			total += v.Shape().Size()
		}
	}
	return total
}

// describe creates the variables (loading them from a checkpoint when resuming) and prints the
// derived quantities: parameters, state bytes per layer, tokens per step, chunks per graph.
func (r *Runner) describe() error {
	m := r.Model
	// Building the whole sequence model (with its RMT wrapper) creates every weight.
	init := mlmodel.MustNewExec(r.Backend, r.Store, func(scope *mlmodel.Scope, ids *Node) *Node {
		h, _ := r.Seq.Hidden(scope, ids, nil)
		return r.Seq.Logits(scope.ResetVisited(), h)
	})
	defer init.Finalize()
	probe := max(2, r.Seq.SegmentLen())
	if _, err := init.Call(tensors.FromFlatDataAndDimensions(make([]int32, probe), 1, probe)); err != nil {
		return fmt.Errorf("building the model: %w", err)
	}
	if r.imported != nil {
		if err := r.imported.Check(r.Store); err != nil {
			return fmt.Errorf("train.init_from: %w", err)
		}
	}
	t := r.Exp.Train
	seqLen := r.Exp.Data.SeqLen()
	r.logf("model: %d layers %v, d_model %d, %s parameters (%s)", len(m.Mixers), m.Config.Layers, m.Config.DModel,
		humanCount(r.parameters()), m.DType)
	var perLayer []string
	for i, specs := range m.LayerStateSpecs(t.BatchSize) {
		perLayer = append(perLayer, fmt.Sprintf("%d:%s", i, humanBytes(layers.StateBytes(specs))))
	}
	chunks := m.ChunksPerGraph(seqLen)
	r.logf("state per layer at batch %d: %s", t.BatchSize, strings.Join(perLayer, " "))
	r.logf("tokens per step: %d (batch %d x seq_len %d x accum %d); unrolled chunks per graph: %d",
		t.BatchSize*seqLen*t.AccumSteps, t.BatchSize, seqLen, t.AccumSteps, chunks)
	return nil
}

func humanCount(n int) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
