package train

import (
	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
	"github.com/engramlx/engram/rmt"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// rmtSources returns the sources of the copy task and of rmt's segment curriculum; ok is false when
// the experiment uses neither (the other tasks' sources are built by Sources). The evaluation split
// always holds full rows: the curriculum only shortens training rows.
func rmtSources(exp configs.Experiment) (trainSrc, evalSrc data.Source, ok bool, err error) {
	curriculum := exp.RMT.Enabled && exp.RMT.Curriculum
	if exp.Data.Task != "copy" && !curriculum {
		return nil, nil, false, nil
	}
	batch := exp.Train.BatchSize
	full := exp.CurriculumTask(exp.CurriculumSegments())
	if !curriculum {
		full = exp.Data.Copy
	}
	if evalSrc, err = data.NewTaskSource(full, batch, exp.Seed, SplitEval); err != nil {
		return nil, nil, true, err
	}
	if curriculum {
		trainSrc, err = rmt.NewCurriculum(exp.CurriculumSegments(), exp.CurriculumTask, batch, exp.Seed, SplitTrain)
	} else {
		trainSrc, err = data.NewTaskSource(full, batch, exp.Seed, SplitTrain)
	}
	return trainSrc, evalSrc, true, err
}

// newRMT wraps m when the experiment enables rmt (nil otherwise).
func newRMT(exp configs.Experiment, m *model.Model) (*rmt.RMT, error) {
	if !exp.RMT.Enabled {
		return nil, nil
	}
	return rmt.New(exp.RMT, m)
}

// labelledLogits is the training graph's model: logits [B, P, vocab] at positions [B, P] of ids [B, T],
// through rmt's segments when the run has a wrapper.
func (r *Runner) labelledLogits(scope *mlmodel.Scope, ids, positions *Node) *Node {
	if r.RMT == nil {
		return r.Model.LabelledLogits(scope, ids, positions)
	}
	hidden := r.RMT.Hidden(scope, ids)
	return r.Model.Logits(scope.ResetVisited(), model.GatherPositions(hidden, positions))
}
