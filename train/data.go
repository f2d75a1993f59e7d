package train

import (
	"iter"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/gomlx/core/tensors"
	mltrain "github.com/gomlx/gomlx/ml/train"
)

// Split numbers of the built-in generators (data's), kept here for callers of train.
const (
	SplitTrain = data.SplitTrain
	SplitEval  = data.SplitEval
	SplitTest  = data.SplitTest
)

// Sources returns the training and held-apart evaluation sources of an experiment.
func Sources(exp configs.Experiment) (trainSrc, evalSrc data.Source, err error) {
	task, ok := exp.Data.Generator()
	if !ok {
		return fileSources(exp)
	}
	batch := exp.Train.BatchSize
	if mix := exp.Data.MixedTasks(); len(mix) > 0 {
		// Zoology's mixed training: each batch one shape of the mix, drawn uniformly (by index, so a
		// resumed run sees the same batches); the evaluation split draws from the same mix.
		shape := func(k int) data.Task { return mix[k-1] }
		tr, err := data.NewCurriculum(len(mix), shape, batch, exp.Seed, SplitTrain)
		if err != nil {
			return nil, nil, err
		}
		ev, err := data.NewCurriculum(len(mix), shape, batch, exp.Seed, SplitEval)
		return tr, ev, err
	}
	if exp.RMT.Enabled && exp.RMT.Curriculum {
		// Training rows of 1..n segments (the evaluation split keeps full rows).
		n := exp.CurriculumSegments()
		task = exp.CurriculumTask(n)
		tr, err := data.NewCurriculum(n, exp.CurriculumTask, batch, exp.Seed, SplitTrain)
		if err != nil {
			return nil, nil, err
		}
		ev, err := data.NewTaskSource(task, batch, exp.Seed, SplitEval)
		return tr, ev, err
	}
	tr, err := data.NewTaskSource(task, batch, exp.Seed, SplitTrain)
	if err != nil {
		return nil, nil, err
	}
	ev, err := data.NewTaskSource(task, batch, exp.Seed, SplitEval)
	if err != nil {
		return nil, nil, err
	}
	return tr, ev, nil
}

// indexedDataset adapts a data.Source to GoMLX's train.Dataset, starting at batch index start and
// stopping after limit batches (limit < 0: never). Inputs are (ids, positions) and, for rows that pack
// documents, docStart; labels (targets, weights).
type indexedDataset struct {
	src          data.Source
	vocab, slots int
	start, limit int64
}

func (d *indexedDataset) Name() string { return d.src.Name() }

func (d *indexedDataset) Iter() iter.Seq2[mltrain.Batch, error] {
	return func(yield func(mltrain.Batch, error) bool) {
		for i := int64(0); d.limit < 0 || i < d.limit; i++ {
			b, err := d.src.BatchAt(d.start + i)
			if err == nil {
				err = b.CheckVocab(d.vocab, d.src.Name())
			}
			if err != nil {
				yield(mltrain.Batch{}, err)
				return
			}
			in, err := model.MakeInputs(b, d.slots)
			if err != nil {
				yield(mltrain.Batch{}, err)
				return
			}
			batch := mltrain.Batch{Inputs: []*tensors.Tensor{in.IDs, in.Positions}, Labels: []*tensors.Tensor{in.Targets, in.Weights}}
			if in.DocStart != nil {
				// A spec of its own: GoMLX's trainer keys its compiled graphs by spec and wants one input
				// count per spec (an evaluation source may pack while the training one does not).
				batch.Inputs, batch.Spec = append(batch.Inputs, in.DocStart), "documents"
			}
			if !yield(batch, nil) {
				return
			}
		}
	}
}

// fileSources opens the training and evaluation files; the evaluation split is read in order.
func fileSources(exp configs.Experiment) (trainSrc, evalSrc data.Source, err error) {
	d := exp.Data
	if trainSrc, err = data.OpenFiles(d.Train, exp.Train.BatchSize, d.FilesSeqLen, exp.Model.Vocab, exp.Seed); err != nil {
		return nil, nil, err
	}
	evalCfg := d.Eval
	evalCfg.Shuffle = false
	if evalSrc, err = data.OpenFiles(evalCfg, exp.Train.BatchSize, d.FilesSeqLen, exp.Model.Vocab, exp.Seed); err != nil {
		return nil, nil, err
	}
	return trainSrc, evalSrc, nil
}
