package data

// Split numbers of the generators: each split has its own random stream, so the rows a model is
// trained on (SplitTrain), evaluated on during training (SplitEval) and tested on by cmd/eval
// (SplitTest) never coincide.
const (
	SplitTrain = 0
	SplitEval  = 1
	SplitTest  = 2
)
