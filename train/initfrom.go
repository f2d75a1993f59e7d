package train

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/model"
)

// initFrom makes the store of a run that has no checkpoint yet take its weights from the export in
// train.init_from (checked against the run's architecture first); describe's model build then checks
// that the export held every weight and nothing else. A resumed run keeps its checkpoint's weights.
func (r *Runner) initFrom() error {
	dir := r.Exp.Train.InitFrom
	if dir == "" {
		return nil
	}
	if _, resumed := r.ckpt.Loaded(); resumed {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoints.ConfigFile)); err != nil {
		if _, runErr := os.Stat(filepath.Join(dir, "config.yaml")); runErr == nil {
			return fmt.Errorf("train.init_from = %s is a run directory: export it first (go run ./cmd/export -run %s) and start from %s", dir, dir, filepath.Join(dir, "export"))
		}
		return fmt.Errorf("train.init_from = %s: not an export directory (no %s)", dir, checkpoints.ConfigFile)
	}
	imp, err := checkpoints.Import(dir)
	if err != nil {
		return fmt.Errorf("train.init_from: %w", err)
	}
	from := model.DefaultConfig()
	if err := configs.DecodeSavedModel(imp.Manifest.Architecture, &from); err != nil {
		return fmt.Errorf("train.init_from = %s: architecture: %w", dir, err)
	}
	// Exports hold the streaming set-up of the same weights (model.Config.ForStreaming).
	if diffs := configs.DiffModels(from.ForStreaming(), r.Exp.Model.ForStreaming()); len(diffs) > 0 {
		return fmt.Errorf("train.init_from = %s holds another architecture than this run's model: %s", dir, strings.Join(diffs, "; "))
	}
	wrap := model.DefaultRMTConfig()
	hasRMT, err := imp.DecodeRMT(&wrap)
	if err != nil {
		return fmt.Errorf("train.init_from: %w", err)
	}
	if hasRMT != r.Exp.RMT.Enabled || (hasRMT && !reflect.DeepEqual(wrap, r.Exp.RMT)) {
		return fmt.Errorf("train.init_from = %s: its rmt section (enabled %v) differs from this run's (enabled %v)", dir, hasRMT, r.Exp.RMT.Enabled)
	}
	if err := imp.InitStore(r.Store, r.Model.DType); err != nil {
		return err
	}
	r.imported = imp
	r.logf("initialising the weights from %s (step %d of run %q)", dir, imp.Manifest.Source.Step, imp.Manifest.Source.Run)
	return nil
}
