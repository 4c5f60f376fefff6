package cnf

import (
	"context"
	"runtime"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// genStream is one generator queue's state. It outlives a connection so a link flap
// neither reuses nor skips sequence numbers: frames stamped but not accepted by the ring
// stay pending and go first on the next connection.
type genStream struct {
	stream uint32
	seq    uint64   // next sequence number to stamp
	frames [][]byte // pooled frames, built from the template once
	off    int      // frames[off:end] are stamped and not yet accepted
	end    int
	credit float64 // rate limiter tokens, in frames
	last   time.Time
}

func (r *Runner) ensureGens(n int) {
	for i := len(r.gens); i < n; i++ {
		stream := r.opts.Stream + uint32(i)
		tmpl, _ := buildTemplate(r.opts.Size, r.opts.IPMode, r.opts.SrcMAC, r.opts.DstMAC, stream) // size checked by setDefaults
		g := &genStream{stream: stream, frames: make([][]byte, r.opts.Batch)}
		for j := range g.frames {
			g.frames[j] = append([]byte(nil), tmpl...)
		}
		r.gens = append(r.gens, g)
	}
}

// claim takes up to n frames from the Count budget (all when Count is 0).
func (r *Runner) claim(n int) int {
	if r.opts.Count == 0 {
		return n
	}
	for {
		left := r.budget.Load()
		if left == 0 {
			return 0
		}
		take := min(uint64(n), left)
		if r.budget.CompareAndSwap(left, left-take) {
			return int(take)
		}
	}
}

// allowance returns how many frames the rate limit lets this queue send now, refilling
// tokens by the time passed. The bucket holds at most a batch or 10 ms of traffic, so a
// pause (a link flap, a slow peer) is not followed by an unbounded burst.
func (g *genStream) allowance(rate float64, batch int, now time.Time) int {
	if rate <= 0 {
		return batch
	}
	if g.last.IsZero() {
		g.last = now
		g.credit = 1
	}
	g.credit += rate * now.Sub(g.last).Seconds()
	g.last = now
	g.credit = min(g.credit, max(float64(batch), rate/100))
	return min(batch, int(g.credit))
}

// generate sends frames on one transmit queue until the budget or the duration is spent
// (done), the link goes down, or ctx ends. Only frames the ring accepted are counted.
func (r *Runner) generate(ctx context.Context, g *genStream, q *memif.Queue, queues int) (bool, error) {
	rate := r.opts.Rate / float64(queues)
	backoff := 0
	timer := newStoppedTimer()
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return true, nil
		}
		now := time.Now()
		if g.off == g.end {
			if !r.genEnd.IsZero() && !now.Before(r.genEnd) {
				return true, nil
			}
			k := g.allowance(rate, len(g.frames), now)
			if k == 0 {
				wait := time.Duration((1 - g.credit) / rate * float64(time.Second))
				if !sleepCtx(ctx, timer, max(wait, 20*time.Microsecond)) {
					return true, nil
				}
				continue
			}
			if k = r.claim(k); k == 0 {
				return true, nil
			}
			if rate > 0 {
				g.credit -= float64(k)
			}
			for i := range k {
				stampSeq(g.frames[i], r.opts.IPMode, g.seq)
				g.seq++
			}
			g.off, g.end = 0, k
		}
		n, err := q.TxBurst(g.frames[g.off:g.end])
		if n > 0 {
			g.off += n
			r.c.sent.Add(uint64(n))
			r.c.txBytes.Add(uint64(n * r.opts.Size))
			r.c.mark(time.Since(r.start))
		}
		if err != nil {
			return false, r.queueErr("tx", q, err)
		}
		if g.off < g.end {
			r.c.txFull.Add(1)
			if !backpressure(ctx, timer, &backoff) {
				return true, nil
			}
			continue
		}
		backoff = 0
	}
}

// backpressure waits for a full ring to drain. memif has no "space available" interrupt,
// so yield first (the consumer may share our core) and then sleep, doubling up to 1 ms.
// It returns false when ctx ended.
func backpressure(ctx context.Context, t *time.Timer, backoff *int) bool {
	*backoff++
	if *backoff <= 4 {
		runtime.Gosched()
		return ctx.Err() == nil
	}
	d := min(time.Microsecond<<min(*backoff-4, 10), time.Millisecond)
	return sleepCtx(ctx, t, d)
}

// newStoppedTimer returns a worker's reusable timer, so pacing allocates nothing.
func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// sleepCtx sleeps for d on the worker's timer unless ctx ends first; it reports whether
// ctx is still live.
func sleepCtx(ctx context.Context, t *time.Timer, d time.Duration) bool {
	t.Reset(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
