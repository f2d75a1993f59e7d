package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
)

// Training from Parquet files written from the generator (pad mode, no shuffle, same batch size) sees
// the same batches as training from the generator, so it ends with the same weights and accuracy.
func TestTrainFromParquetEqualsGenerator(t *testing.T) {
	genDir, fileDir := t.TempDir(), t.TempDir()
	fromGen := tinyExperiment(t, genDir)
	r1, err := NewRunner(fromGen, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s1, err := r1.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	fromFiles := tinyExperiment(t, fileDir)
	trainSrc, evalSrc, err := Sources(fromFiles)
	if err != nil {
		t.Fatal(err)
	}
	trainFile, evalFile := filepath.Join(fileDir, "train.parquet"), filepath.Join(fileDir, "eval.parquet")
	rows := fromFiles.Train.Steps * fromFiles.Train.BatchSize
	if err := data.WriteTask(trainFile, data.OutParquet, trainSrc.(*data.GeneratorSource), rows); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteTask(evalFile, data.OutParquet, evalSrc.(*data.GeneratorSource), fromFiles.Train.EvalBatches*fromFiles.Train.BatchSize); err != nil {
		t.Fatal(err)
	}
	fromFiles.Data.Task = "files"
	fromFiles.Data.FilesSeqLen = fromFiles.Data.MQAR.SeqLen
	fromFiles.Data.Train = data.FileConfig{Path: trainFile, Format: "parquet"}
	fromFiles.Data.Eval = data.FileConfig{Path: evalFile, Format: "parquet"}
	r2, err := NewRunner(fromFiles, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r2.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, got := weights(t, r1), weights(t, r2)
	for path, w := range want {
		if err := lt.RelRMS(got[path], w); !(err <= 1e-7) {
			t.Errorf("%s: weights trained from Parquet differ from the generator's by %.3g", path, err)
		}
	}
	if s1.EvalAccuracy != s2.EvalAccuracy || s1.EvalLoss != s2.EvalLoss {
		t.Errorf("eval from files (%v, %v) != from the generator (%v, %v)", s2.EvalAccuracy, s2.EvalLoss, s1.EvalAccuracy, s1.EvalLoss)
	}
}
