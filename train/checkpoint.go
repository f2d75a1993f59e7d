package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/engramlx/engram/configs"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	mlckpt "github.com/gomlx/gomlx/ml/model/checkpoint"
)

// checkpoints wraps GoMLX's checkpoint handler (which loads the latest checkpoint into the store when
// opened, and keeps the last K) and writes a sidecar, checkpoints/engram.json, after each save via a
// temporary file and a rename: it records the step and data position the checkpoint belongs to.
type checkpoints struct {
	dir     string
	handler *mlckpt.Handler
}

// Info is the sidecar written after every checkpoint.
type Info struct {
	Step          int       `json:"step"`
	DataPosition  int64     `json:"data_position"` // index of the next training batch
	Saved         time.Time `json:"saved"`
	GoMLXVersion  string    `json:"gomlx_version"`
	Backend       string    `json:"backend"`
	ElapsedSecond float64   `json:"elapsed_seconds"` // wall time of all sessions up to this checkpoint
}

// GoMLXVersion is the GoMLX release checkpoints are written with (checkpoints of other minor versions
// are not compatible).
const GoMLXVersion = "v0.28.8"

func openCheckpoints(store *mlmodel.Store, dir string, keep int) (*checkpoints, error) {
	handler, err := mlckpt.Build(store).Dir(dir).Keep(keep).Done()
	if err != nil {
		return nil, fmt.Errorf("checkpoints in %s: %w", dir, err)
	}
	return &checkpoints{dir: dir, handler: handler}, nil
}

// Save writes a checkpoint of the store, then the sidecar.
func (c *checkpoints) Save(info Info) error {
	if err := c.handler.Save(); err != nil {
		return fmt.Errorf("saving checkpoint in %s: %w", c.dir, err)
	}
	info.Saved = time.Now().UTC()
	info.GoMLXVersion = GoMLXVersion
	body, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(c.dir, "engram.json"), body)
}

// ReadInfo reads the sidecar of the latest checkpoint in dir.
func ReadInfo(dir string) (Info, error) {
	var info Info
	body, err := os.ReadFile(filepath.Join(dir, "engram.json"))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("%s: %w", filepath.Join(dir, "engram.json"), err)
	}
	return info, nil
}

func (r *Runner) checkpointInfo() Info {
	step := r.GlobalStep()
	prior := 0.0
	if info, err := ReadInfo(r.ckpt.dir); err == nil {
		prior = info.ElapsedSecond
	}
	return Info{Step: step, DataPosition: int64(step * r.Exp.Train.AccumSteps), Backend: r.Choice.Config,
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
		saved, err := configs.Parse(file, src, nil)
		if err != nil {
			return fmt.Errorf("the run directory's saved config is unreadable: %w", err)
		}
		if diff := configs.Diff(saved.Model, r.Exp.Model, "model"); len(diff) > 0 {
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
	return WriteFileAtomic(file, body)
}

// WriteFileAtomic writes body to a temporary file in the same directory, syncs it and renames it over
// file, so readers see either the old or the new content, never a partial one.
func WriteFileAtomic(file string, body []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func renameOver(from, to string) error { return os.Rename(from, to) }
