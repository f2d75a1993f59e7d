package data

import "sync"

// prefetcher computes the batches after the one asked for in background goroutines. Batches are pure
// functions of their index, so prefetching changes only when the work is done, never the result.
type prefetcher struct {
	compute func(index int64) (Batch, error)
	depth   int
	mu      sync.Mutex
	ahead   map[int64]*pendingBatch
}

type pendingBatch struct {
	done  chan struct{}
	batch Batch
	err   error
}

func newPrefetcher(depth int, compute func(int64) (Batch, error)) *prefetcher {
	return &prefetcher{compute: compute, depth: depth, ahead: map[int64]*pendingBatch{}}
}

// get returns batch index, from the background work when it was started, and starts work on the
// next depth batches. A returned batch belongs to the caller: it is handed out once.
func (p *prefetcher) get(index int64) (Batch, error) {
	p.mu.Lock()
	cur := p.ahead[index]
	for k := range p.ahead {
		if k <= index || k > index+int64(p.depth) {
			delete(p.ahead, k) // a running goroutine finishes and its result is dropped
		}
	}
	for j := index + 1; j <= index+int64(p.depth) && j > index; j++ {
		if p.ahead[j] == nil {
			p.ahead[j] = p.start(j)
		}
	}
	p.mu.Unlock()
	if cur == nil {
		return p.compute(index)
	}
	<-cur.done
	return cur.batch, cur.err
}

func (p *prefetcher) start(index int64) *pendingBatch {
	pb := &pendingBatch{done: make(chan struct{})}
	go func() {
		defer close(pb.done)
		pb.batch, pb.err = p.compute(index)
	}()
	return pb
}

// Prefetched wraps a source so that the depth batches after each one asked for are prepared in
// background goroutines. The source's BatchAt must be safe for concurrent use (every Source in this
// package is); results are the same as without prefetching.
type Prefetched struct {
	Source
	p *prefetcher
}

// Prefetch wraps src with depth batches of read-ahead (depth < 1 returns src unchanged).
func Prefetch(src Source, depth int) Source {
	if depth < 1 {
		return src
	}
	return &Prefetched{Source: src, p: newPrefetcher(depth, src.BatchAt)}
}

// BatchAt implements Source.
func (s *Prefetched) BatchAt(index int64) (Batch, error) { return s.p.get(index) }
