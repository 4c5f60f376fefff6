package cnf

import (
	"context"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// rxBufs returns one worker's pooled receive buffers.
func (r *Runner) rxBufs() [][]byte {
	bufs := make([][]byte, r.opts.Batch)
	for i := range bufs {
		bufs[i] = make([]byte, r.opts.MaxFrame)
	}
	return bufs
}

// account counts a received burst and checks its sequence numbers, taking the tracker
// lock once per burst. It reports whether the receive Count is reached.
func (r *Runner) account(frames [][]byte) bool {
	var nb uint64
	r.seqMu.Lock()
	for _, f := range frames {
		nb += uint64(len(f))
		r.seq.add(f, r.opts.IPMode)
	}
	r.seqMu.Unlock()
	r.c.rxBytes.Add(nb)
	total := r.c.received.Add(uint64(len(frames)))
	r.c.mark(time.Since(r.start))
	return r.opts.Count > 0 && total >= r.opts.Count
}

// sink counts and checks frames from one receive queue until the link goes down or ctx
// ends. An idle queue sleeps on the peer's interrupt after a few re-checks.
func (r *Runner) sink(ctx context.Context, stop context.CancelFunc, q *memif.Queue) (bool, error) {
	bufs := r.rxBufs()
	for {
		n, err := q.RxBurst(bufs)
		if n > 0 && r.account(bufs[:n]) {
			stop()
			return true, nil
		}
		if err != nil {
			return false, r.queueErr("rx", q, err)
		}
		if n == 0 {
			if err := q.PollWait(ctx, r.opts.Spins); err != nil {
				if ctx.Err() != nil {
					return true, nil
				}
				return false, r.queueErr("wait", q, err)
			}
		}
	}
}
