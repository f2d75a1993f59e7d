package export

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/gomlx/gomlx/core/tensors"
)

// A state export also writes the prompt's ids and the model's logits over it (what a port to another
// framework checks itself against, docs/rebuild_quickstart.py): the logits one run of the prompt gives.
func TestStateWritesPromptLogits(t *testing.T) {
	r := trainedRun(t, `model: {vocab: 8, d_model: 8, layers: [attention], mlp_hidden: 16, attention: {heads: 2, max_context: 16}}`)
	m := mustFromRun(t, r)
	out := t.TempDir()
	ids := []int32{3, 1, 4, 1, 5, 2}
	if _, err := State(m, out, ids); err != nil {
		t.Fatal(err)
	}
	file, err := checkpoints.ReadSafetensors(filepath.Join(out, PromptLogitsFile))
	if err != nil {
		t.Fatal(err)
	}
	gotIDs, okIDs := file.Get("ids")
	gotLogits, okLogits := file.Get("logits")
	if !okIDs || !okLogits || gotIDs.DType != checkpoints.I32 || len(gotIDs.Shape) != 1 || gotIDs.Shape[0] != len(ids) ||
		gotLogits.DType != checkpoints.F32 || len(gotLogits.Shape) != 2 || gotLogits.Shape[0] != len(ids) || gotLogits.Shape[1] != 8 {
		t.Fatalf("%s: ids %+v, logits %+v", PromptLogitsFile, gotIDs, gotLogits)
	}
	for i, id := range ids {
		if v := int32(binary.LittleEndian.Uint32(gotIDs.Data[4*i:])); v != id {
			t.Errorf("ids[%d] = %d, want %d", i, v, id)
		}
	}
	exec, err := m.Stepper()
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	want, _, err := Run(exec, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	flat := tensors.MustCopyFlatData[float32](want)
	for i, w := range flat {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(gotLogits.Data[4*i:])); got != w {
			t.Fatalf("logits[%d] = %v, want %v", i, got, w)
		}
	}
}
