package model

import (
	"fmt"

	"github.com/engramlx/engram/data"
	"github.com/gomlx/gomlx/core/tensors"
)

// Inputs are the tensors of one batch as the graphs take them.
type Inputs struct {
	IDs       *tensors.Tensor // [B, T] int32
	Positions *tensors.Tensor // [B, P] int32: the labelled positions of each row, padded with 0
	Targets   *tensors.Tensor // [B, P] int32
	Weights   *tensors.Tensor // [B, P] float32: 1 at real labels, 0 at padding slots
	// DocStart [B, T] int32 is 1 at each document's first token in rows that pack documents (the
	// batch's DocStart); nil when the batch has none.
	DocStart *tensors.Tensor
	Labelled int // number of labelled positions in the batch
}

// MakeInputs gathers each row's labelled positions (label != data.Ignore) into slots per row. A row
// with more labelled positions than slots is an error naming the row.
func MakeInputs(b data.Batch, slots int) (Inputs, error) {
	if slots < 1 {
		return Inputs{}, fmt.Errorf("label slots = %d: must be >= 1", slots)
	}
	positions := make([]int32, b.Size*slots)
	targets := make([]int32, b.Size*slots)
	weights := make([]float32, b.Size*slots)
	total := 0
	for r := 0; r < b.Size; r++ {
		_, labels := b.Row(r)
		n := 0
		for t, label := range labels {
			if label == data.Ignore {
				continue
			}
			if n == slots {
				return Inputs{}, fmt.Errorf("row %d has more than %d labelled positions (the model's label slots)", r, slots)
			}
			positions[r*slots+n], targets[r*slots+n], weights[r*slots+n] = int32(t), label, 1
			n++
		}
		total += n
	}
	var docStart *tensors.Tensor
	if b.DocStart != nil {
		docStart = tensors.FromFlatDataAndDimensions(b.DocStart, b.Size, b.SeqLen)
	}
	return Inputs{
		DocStart:  docStart,
		IDs:       tensors.FromFlatDataAndDimensions(b.InputIDs, b.Size, b.SeqLen),
		Positions: tensors.FromFlatDataAndDimensions(positions, b.Size, slots),
		Targets:   tensors.FromFlatDataAndDimensions(targets, b.Size, slots),
		Weights:   tensors.FromFlatDataAndDimensions(weights, b.Size, slots),
		Labelled:  total,
	}, nil
}
