package train

import (
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"os"
	"path/filepath"
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

// checkSameArchitecture refuses to resume a run directory whose saved model differs from exp's, naming
// the differing fields; run fields (steps, eval cadence) may change. It then saves the resolved config.
func (r *Runner) checkSameArchitecture() error {
	file := filepath.Join(r.Dir, "config.yaml")
	if src, err := os.ReadFile(file); err == nil {
		saved, err := configs.ParseSaved(file, src)
		if err != nil {
			return fmt.Errorf("the run directory's saved config is unreadable: %w", err)
		}
		diff := configs.Diff(saved.Model.InUse(), r.Exp.Model.InUse(), "model")
		if r.Exp.RMT.Enabled || saved.RMT.Enabled {
			diff = append(diff, configs.Diff(saved.RMT, r.Exp.RMT, "rmt")...)
		}
		if len(diff) > 0 {
			return fmt.Errorf("%s holds a run with a different architecture; use another name or directory. Differences (saved -> now): %s", r.Dir, diff)
		}
		if saved.Data != r.Exp.Data || saved.Seed != r.Exp.Seed {
			return fmt.Errorf("%s holds a run with different data or seed (saved data %+v seed %d, now %+v seed %d); resuming would change the data order", r.Dir, saved.Data, saved.Seed, r.Exp.Data, r.Exp.Seed)
		}
	}
	body, err := configs.Marshal(r.Exp)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, body)
}

func renameOver(from, to string) error { return os.Rename(from, to) }
