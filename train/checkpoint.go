package train

import (
	"encoding/json"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Info is the sidecar written with every checkpoint (package checkpoints saves and loads them atomically).
type Info = checkpoints.Info

// GoMLXVersion is the GoMLX release checkpoints are written with (checkpoints of other minor versions
// are not compatible).
const GoMLXVersion = checkpoints.GoMLXVersion

func openCheckpoints(store *mlmodel.Store, dir string, keep int) (*checkpoints.Manager, error) {
	return checkpoints.Open(store, dir, keep)
}

// ReadInfo reads the sidecar of the latest complete checkpoint in dir.
func ReadInfo(dir string) (Info, error) { return checkpoints.Latest(dir) }

func (r *Runner) checkpointInfo() Info {
	step := r.GlobalStep()
	prior := 0.0
	if info, err := ReadInfo(r.ckpt.Dir()); err == nil {
		prior = info.ElapsedSecond
	}
	config, _ := configs.Marshal(r.Exp)
	return Info{Step: step, Config: string(config), DataPosition: int64(step * r.Exp.Train.AccumSteps), Backend: r.Choice.Config,
		ElapsedSecond: prior + time.Since(r.sessionMark()).Seconds()}
}

// sessionMark returns the time from which this session's wall time since the last save counts.
func (r *Runner) sessionMark() time.Time {
	mark := r.start
	if !r.lastSave.IsZero() {
		mark = r.lastSave
	}
	r.lastSave = time.Now()
	return mark
}

// checkSavedConfig reconciles the run directory's saved config.yaml with exp. Before anything was
// trained (no checkpoint: a new run, or a start that failed) exp simply replaces it. Once a checkpoint
// exists, settings that change the trained function (model, rmt, data, seed) must match: the error
// names the differing keys and the way out. Other settings (steps, schedule, eval cadence, backend)
// may change: the changes are printed and appended to resumes.jsonl, and config.yaml keeps the
// settings the run started with, so the record stays true.
func (r *Runner) checkSavedConfig() error {
	file := filepath.Join(r.Dir, "config.yaml")
	src, err := os.ReadFile(file)
	latest, noCkpt := checkpoints.Latest(filepath.Join(r.Dir, "checkpoints"))
	if err != nil || noCkpt != nil {
		body, err := configs.Marshal(r.Exp)
		if err != nil {
			return err
		}
		return fsutil.WriteFileAtomic(file, body)
	}
	saved, err := configs.ParseSaved(file, src)
	if err != nil {
		return fmt.Errorf("the run directory's saved config is unreadable: %w", err)
	}
	fixed := configs.DiffModels(saved.Model, r.Exp.Model)
	fixed = append(fixed, configs.Diff(saved.RMT, r.Exp.RMT, "rmt")...)
	fixed = append(fixed, configs.Diff(saved.Data, r.Exp.Data, "data")...)
	if saved.Seed != r.Exp.Seed {
		fixed = append(fixed, fmt.Sprintf("seed: %d -> %d", saved.Seed, r.Exp.Seed))
	}
	if len(fixed) > 0 {
		return fmt.Errorf("%s holds a run trained with other settings (%s); use -name to start a new run, or delete %s to start this one afresh",
			r.Dir, strings.Join(fixed, "; "), r.Dir)
	}
	changes := configs.Diff(saved.Train, r.Exp.Train, "train")
	changes = append(changes, configs.Diff(saved.Eval, r.Exp.Eval, "eval")...)
	if saved.Backend != r.Exp.Backend {
		changes = append(changes, fmt.Sprintf("backend: %s -> %s", saved.Backend, r.Exp.Backend))
	}
	if len(changes) == 0 {
		return nil
	}
	r.logf("resuming %s with changed settings: %s (recorded in resumes.jsonl; config.yaml keeps the original)", r.Dir, strings.Join(changes, "; "))
	f, err := os.OpenFile(filepath.Join(r.Dir, "resumes.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false) // "a -> b" stays readable
	return enc.Encode(map[string]any{"time": time.Now().UTC().Format(time.RFC3339), "step": latest.Step, "changes": changes})
}
