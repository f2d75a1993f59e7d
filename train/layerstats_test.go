package train

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/engramlx/engram/configs"
)

// TestMoMLoadInMetrics: a model with a mom layer logs each memory's load on every metrics line, as
// fractions of the top-k assignments (in [0, 1], summing to 1 over the memories).
func TestMoMLoadInMetrics(t *testing.T) {
	dir := t.TempDir()
	exp, err := configs.Parse("tiny_mom", []byte(`
name: tiny_mom
seed: 3
runs_dir: `+dir+`
model:
  vocab: 32
  d_model: 16
  layers: [mom]
  mlp_hidden: -1
  mom: {memories: 3, top_k: 2, memory: {heads: 1, head_dim_k: 4, chunk_size: 8}}
data: {task: mqar, mqar: {vocab: 32, seq_len: 16, num_pairs: 2, power_a: 0.01}}
train: {steps: 2, batch_size: 2, warmup_steps: 1, eval_batches: 1, log_every: 1, checkpoint_every: 0}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(exp, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadMetrics(filepath.Join(r.Dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d metrics lines, want 2", len(lines))
	}
	for _, line := range lines {
		var sum float64
		for m := 0; m < 3; m++ {
			name := fmt.Sprintf("layer_0/mom/load_%d", m)
			load, ok := line[name]
			if !ok || load < 0 || load > 1 {
				t.Fatalf("step %v: %s = %v (present %v), want a fraction; line %v", line["step"], name, load, ok, line)
			}
			sum += load
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("step %v: loads sum to %g, want 1", line["step"], sum)
		}
	}
}
