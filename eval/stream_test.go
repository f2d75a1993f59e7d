package eval

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// streamLen is the full-attention cache of the test models and the longest streamed input.
const streamLen = 4096

// equivalenceLen is the input length of the streaming-equivalence test: 256 tokens by default, so the
// package's tests stay within a minute on 2 shared cores with every mixer type registered;
// ENGRAM_EVAL_STREAM_LEN=4096 runs the 4K-token measurement.
func equivalenceLen(t *testing.T) int {
	if s := os.Getenv("ENGRAM_EVAL_STREAM_LEN"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("ENGRAM_EVAL_STREAM_LEN = %q: want a positive length", s)
		}
		return n
	}
	return 256
}

// tinyModel is a float64 two-layer model of one mixer type, small enough for 4K-token graphs in tests.
// Types registered later get DefaultConfig's sections for their own settings.
func tinyModel(t *testing.T, mixer string) *model.Model {
	t.Helper()
	cfg := model.DefaultConfig()
	cfg.Vocab, cfg.DModel, cfg.MLPHidden, cfg.DType = 32, 16, 32, "float64"
	cfg.Layers = model.LayerTypes(mixer, mixer)
	cfg.Attention.Heads, cfg.Attention.MaxContext, cfg.Attention.ShortConv = 2, streamLen, 3
	cfg.SlidingWindow.Heads, cfg.SlidingWindow.Window, cfg.SlidingWindow.ShortConv = 2, 48, 3
	m, err := model.New(cfg)
	if err != nil {
		t.Fatalf("%s: %v", mixer, err)
	}
	return m
}

func newStore(seed int64) *mlmodel.Store {
	store := mlmodel.NewStore()
	store.SetParam(mlmodel.ParamInitialSeed, seed)
	return store
}

// randomBatch is rows of random ids with every position labelled (label 0), so every logit is visited.
func randomBatch(rows, length, vocab int, seed uint64) data.Batch {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := data.NewBatch(rows, length)
	for i := range b.InputIDs {
		b.InputIDs[i], b.Labels[i] = int32(rng.IntN(vocab)), 0
	}
	return b
}

// For every registered mixer type, the logits of an input streamed through the segment step (explicit
// zero state, segments of about 3/4 of the input, the last one padded) equal the logits of one graph
// over the whole input (nil state), in float64. Segments are multiples of 64 tokens: Titans' chunked
// memory streams exactly at multiples of its chunk_size (MAC: of its segment_size, 64 by default).
func TestStreamedEqualsSingleGraph(t *testing.T) {
	length := equivalenceLen(t)
	segment := max(64, 3*length/4/64*64)
	for _, mixer := range model.Types() {
		t.Run(mixer, func(t *testing.T) {
			start := time.Now()
			m := tinyModel(t, mixer)
			store := newStore(5)
			b := randomBatch(1, length, m.Config.Vocab, 11)

			single := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, ids *Node) *Node {
				h, _ := m.Hidden(scope, ids, nil)
				return m.Logits(scope, h)
			})
			defer single.Finalize()
			want := single.MustCall(tensors.FromFlatDataAndDimensions(b.InputIDs, 1, length))[0]

			s, err := NewStreamer(m, m.Config.Vocab, store, lt.Backend(), segment)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			vocab := m.Config.Vocab
			got := make([]float64, length*vocab)
			visited := 0
			err = s.Stream(BatchInput{b}, 1, segment, func(row, pos int, _ int32, logits []float64) {
				copy(got[pos*vocab:(pos+1)*vocab], logits)
				visited++
			})
			if err != nil {
				t.Fatal(err)
			}
			if visited != length {
				t.Fatalf("visited %d positions, want %d", visited, length)
			}
			lt.AssertClose(t, mixer+" streamed logits", tensors.FromFlatDataAndDimensions(got, 1, length, vocab), want, 1e-9)
			t.Logf("%s: %d tokens streamed in %d-token segments vs one graph: rel RMS %.2g (%.1fs)", mixer, length, segment,
				lt.RelRMS(got, lt.Floats(want)), time.Since(start).Seconds())
		})
	}
}

// A context longer than full attention's cache is an ExceedsCacheError naming both numbers; a sliding
// window streams it.
func TestStreamReportsExceededCache(t *testing.T) {
	m := tinyModel(t, "attention")
	s, err := NewStreamer(m, m.Config.Vocab, newStore(1), lt.Backend(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Stream(BatchInput{randomBatch(1, streamLen+1, 32, 1)}, 1, 1, func(int, int, int32, []float64) {})
	if !IsExceedsCache(err) || err.Error() != "context of 4097 tokens exceeds the model's KV cache (attention.max_context = 4096)" {
		t.Fatalf("got %v, want an ExceedsCacheError for 4097 > 4096", err)
	}
}

// An RMT model is evaluated with its memory: the streamed logits equal one graph of the whole RMT
// (memory carried through every segment), and differ from the same weights with the memory zeroed and
// from the bare backbone. Evaluating the backbone alone (the earlier behaviour) fails this test.
func TestStreamedRMTUsesItsMemory(t *testing.T) {
	const length, segLen = 40, 8
	cfg := tinyModel(t, "attention").Config
	wrap := model.DefaultRMTConfig()
	wrap.Enabled, wrap.MemorySize, wrap.SegmentLen = true, 3, segLen
	seq, stack, err := model.NewSequence(cfg, wrap)
	if err != nil {
		t.Fatal(err)
	}
	store := newStore(9)
	b := randomBatch(1, length, cfg.Vocab, 13)
	ids := tensors.FromFlatDataAndDimensions(b.InputIDs, 1, length)
	whole := func(s model.Sequence) *tensors.Tensor {
		exec := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, ids *Node) *Node {
			h, _ := s.Hidden(scope, ids, nil)
			return s.Logits(scope.ResetVisited(), h)
		})
		defer exec.Finalize()
		return exec.MustCall(ids)[0]
	}
	want := whole(seq)
	streamed := func() []float64 {
		s, err := NewStreamer(seq, cfg.Vocab, store, lt.Backend(), 20) // rounded down to 16: two segments a call
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Segment != 2*segLen {
			t.Fatalf("streamer segment %d, want %d (20 rounded down to whole rmt segments)", s.Segment, 2*segLen)
		}
		got := make([]float64, length*cfg.Vocab)
		err = s.Stream(BatchInput{b}, 1, s.Segment, func(_, pos int, _ int32, logits []float64) {
			copy(got[pos*cfg.Vocab:(pos+1)*cfg.Vocab], logits)
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := streamed()
	lt.AssertClose(t, "streamed RMT logits", tensors.FromFlatDataAndDimensions(got, 1, length, cfg.Vocab), want, 1e-9)
	if d := lt.RelRMS(got, lt.Floats(whole(stack))); d < 1e-3 {
		t.Errorf("streamed RMT logits equal the bare backbone's (rel RMS %g)", d)
	}
	memory := store.GetVariable("/rmt/memory")
	if memory == nil {
		t.Fatal("no /rmt/memory variable")
	}
	zeros := tensors.FromShape(memory.Shape())
	if err := memory.SetValue(zeros); err != nil {
		t.Fatal(err)
	}
	if d := lt.RelRMS(streamed(), got); d < 1e-3 {
		t.Errorf("zeroing the learned memory did not change the streamed logits (rel RMS %g): eval ignores the memory", d)
	}
}

// An input shorter than eval.segment runs in one segment graph of about its own length (the model's
// segment unit doubled until it holds the input), not a graph of eval.segment tokens; longer inputs
// stream in eval.segment pieces.
func TestShortInputsRunShortSegments(t *testing.T) {
	plain := &Streamer{Model: tinyModel(t, "swa"), Segment: 512}
	for _, c := range []struct{ length, want int }{{1, 1}, {3, 4}, {64, 64}, {65, 128}, {512, 512}, {10000, 512}} {
		if got := plain.segmentFor(c.length); got != c.want {
			t.Errorf("segment unit 1, eval.segment 512: %d tokens run in segments of %d, want %d", c.length, got, c.want)
		}
	}
}
