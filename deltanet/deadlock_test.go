package deltanet_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/internal/backend"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
)

// The Go backend's parallel op scheduler must finish the graphs that hung compute v0.1.6 (GoMLX
// v0.28.8): the chunked gated delta rule forward+backward at B=8, H=4, T=256, d=64 and T=1024, d=32,
// where a large AVX-512 matmul waited in the worker pool for workers the scheduler held. Each graph runs
// a few times under a deadline, so a hang fails the test instead of stalling CI. It runs, whatever
// $GOMLX_BACKEND says, GoMLX's Go backend with parallel scheduling and its own number of executors (the
// configuration that hung) and with the number Engram sets by default (internal/backend).
func TestParallelSchedulerFinishesChunkedOp(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles four large graphs")
	}
	engram, err := backend.Resolve(deadlockGuardBackend) // the config completed as Engram runs it
	if err != nil {
		t.Fatal(err)
	}
	for _, config := range []string{deadlockGuardBackend, engram.Config} {
		t.Run(config, func(t *testing.T) { finishesUnderDeadline(t, config) })
	}
}

func finishesUnderDeadline(t *testing.T, config string) {
	b, err := compute.NewWithConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	for _, c := range []struct{ time, d int }{{256, 64}, {1024, 32}} {
		t.Run(fmt.Sprintf("T%d_d%d", c.time, c.d), func(t *testing.T) {
			s := opShape{batch: 8, time: c.time, heads: 4, dk: c.d, dv: c.d}
			inputs := opInputs(1, s, 0, 1, -0.5, 0)
			args := make([]any, len(inputs))
			for i, x := range inputs {
				args[i] = as32(x)
			}
			scale := 1 / math.Sqrt(float64(c.d))
			done := make(chan error, 1)
			go func() {
				exec, err := NewExec(b, func(in []*Node) []*Node {
					o, ht := deltanet.Chunked(in[0], in[1], in[2], in[3], in[4], in[5], scale, 64, deltanet.GatedDeltaRule)
					return Gradient(Add(ReduceAllSum(o), ReduceAllSum(ht)), in...)
				})
				if err != nil {
					done <- err
					return
				}
				defer exec.Finalize()
				for range deadlockGuardRuns {
					out, err := exec.Exec(args...)
					if err != nil {
						done <- err
						return
					}
					finalizeAll(out)
				}
				done <- nil
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(150 * time.Second):
				t.Fatal("chunked gated delta rule fwd+bwd did not finish in 150 s under parallel op scheduling: the Go backend's scheduler deadlocked")
			}
		})
	}
}

// deadlockGuardBackend is the backend configuration the guard runs: GoMLX's Go backend with parallel op
// scheduling forced (its default, "dynamic", also goes parallel when a graph runs alone).
const deadlockGuardBackend = "go:ops_parallel"

// deadlockGuardRuns is how many times each graph runs: the v0.28.8 hang did not show on every execution.
const deadlockGuardRuns = 8
