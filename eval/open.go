package eval

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/export"
	"github.com/engramlx/engram/internal/backend"
	"github.com/engramlx/engram/model"
	"github.com/engramlx/engram/train"
	"github.com/gomlx/compute"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// subject is a model to evaluate: a run directory's latest checkpoint, or an export directory
// (cmd/export's model.safetensors + config.json).
type subject struct {
	seq     model.Sequence // set up for streaming (model.Config.ForStreaming)
	vocab   int
	store   *mlmodel.Store
	backend compute.Backend
	// data is the training data section: the run's, or the export's source.data (defaults when an
	// export does not record it).
	data configs.Data
}

// isExport reports whether dir is an export directory rather than a run directory.
func isExport(dir string) bool {
	_, errJSON := os.Stat(filepath.Join(dir, checkpoints.ConfigFile))
	_, errYAML := os.Stat(filepath.Join(dir, "config.yaml"))
	return errJSON == nil && errYAML != nil
}

// displayName names dir in logs, tables and curves: a run by its directory, an export by the run it
// came from (an export usually lives in <run>/export).
func displayName(dir string) string {
	name := filepath.Base(filepath.Clean(dir))
	if isExport(dir) {
		if imp, err := checkpoints.Import(dir); err == nil && imp.Manifest.Source.Run != "" {
			return imp.Manifest.Source.Run
		}
	}
	return name
}

// open opens dir for evaluation.
func open(dir string, log io.Writer) (*subject, error) {
	if !isExport(dir) {
		r, err := train.Open(dir, train.Options{Log: io.Discard})
		if err != nil {
			return nil, err
		}
		// Streaming set-up of the same weights (Titans carries its partial chunk): segments split anywhere.
		seq, _, err := model.NewSequence(r.Exp.Model.ForStreaming(), r.Exp.RMT)
		if err != nil {
			return nil, err
		}
		return &subject{seq: seq, vocab: r.Model.Config.Vocab, store: r.Store, backend: r.Backend, data: r.Exp.Data}, nil
	}
	be, _, err := backend.New("auto", func(format string, args ...any) { fmt.Fprintf(log, format+"\n", args...) })
	if err != nil {
		return nil, err
	}
	m, imp, err := export.Load(dir, be)
	if err != nil {
		return nil, err
	}
	if err := m.Build(); err != nil {
		return nil, err
	}
	if err := imp.Check(m.Store); err != nil {
		return nil, err
	}
	s := &subject{seq: m.Seq, vocab: m.Config.Vocab, store: m.Store, backend: be}
	if s.data, err = exportData(m.TrainData); err != nil {
		return nil, fmt.Errorf("%s: source.data: %w", dir, err)
	}
	return s, nil
}

// exportData decodes an export's source.data over the default data section.
func exportData(raw []byte) (configs.Data, error) {
	d := configs.Default().Data
	if len(raw) == 0 {
		return d, nil
	}
	err := checkpoints.DecodeArchitecture(raw, &d)
	return d, err
}

// savedExperiment is what Settings reads for dir: a run's saved config.yaml, or for an export the
// defaults with the export's training data section.
func savedExperiment(dir string) (configs.Experiment, error) {
	if !isExport(dir) {
		file := filepath.Join(dir, "config.yaml")
		src, err := os.ReadFile(file)
		if err != nil {
			return configs.Experiment{}, err
		}
		return configs.ParseSaved(file, src)
	}
	imp, err := checkpoints.Import(dir)
	if err != nil {
		return configs.Experiment{}, err
	}
	exp := configs.Default()
	if exp.Data, err = exportData(imp.Manifest.Source.Data); err != nil {
		return configs.Experiment{}, fmt.Errorf("%s: source.data: %w", dir, err)
	}
	return exp, nil
}
