package cnf

import (
	"context"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// reflect sends every frame received on in back out, optionally with the MAC addresses
// swapped, until the link goes down or ctx ends. A full transmit ring stops reading (the
// back-pressure reaches the sender) instead of dropping; frames are counted as sent only
// once the ring took them.
func (r *Runner) reflect(ctx context.Context, stop context.CancelFunc, in, out *memif.Queue) (bool, error) {
	bufs := r.rxBufs()
	timer := newStoppedTimer()
	defer timer.Stop()
	for {
		n, err := in.RxBurst(bufs)
		if n > 0 {
			reached := r.account(bufs[:n])
			if r.opts.SwapMACs && !r.opts.IPMode {
				for _, f := range bufs[:n] {
					swapMACs(f)
				}
			}
			if d, err := r.sendAll(ctx, timer, out, bufs[:n]); d || err != nil {
				return d, err
			}
			if reached {
				stop()
				return true, nil
			}
		}
		if err != nil {
			return false, r.queueErr("rx", in, err)
		}
		if n == 0 {
			if err := in.PollWait(ctx, r.opts.Spins); err != nil {
				if ctx.Err() != nil {
					return true, nil
				}
				return false, r.queueErr("wait", in, err)
			}
		}
	}
}

// sendAll transmits every frame, waiting out a full ring. It returns done when ctx ended
// and an error only for a non-flap queue failure; frames left at a link drop are counted
// in TxDropped.
func (r *Runner) sendAll(ctx context.Context, timer *time.Timer, out *memif.Queue, frames [][]byte) (bool, error) {
	backoff := 0
	for len(frames) > 0 {
		n, err := out.TxBurst(frames)
		if n > 0 {
			var nb uint64
			for _, f := range frames[:n] {
				nb += uint64(len(f))
			}
			r.c.sent.Add(uint64(n))
			r.c.txBytes.Add(nb)
			frames = frames[n:]
		}
		if err != nil {
			r.c.txDropped.Add(uint64(len(frames)))
			return false, r.queueErr("tx", out, err)
		}
		if len(frames) > 0 {
			r.c.txFull.Add(1)
			if !backpressure(ctx, timer, &backoff) {
				r.c.txDropped.Add(uint64(len(frames)))
				return true, nil
			}
		}
	}
	return false, nil
}
