package vhostuser

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// survive runs deferred in every burst: guest memory belongs to the
// frontend, and a fault on it (a memory file shrunk under us) or a panic on
// its ring data must cost that frontend its connection, not the process.
// debug.SetPanicOnFault turns the fault into a panic for the burst's
// duration; oldFault is the goroutine's previous setting.
func (p *Port) survive(oldFault bool, n *int) {
	debug.SetPanicOnFault(oldFault)
	if r := recover(); r != nil {
		what := "panic"
		if _, ok := r.(interface{ Addr() uintptr }); ok {
			what = "memory fault"
		} else if onBurstPanic != nil {
			onBurstPanic(r)
		}
		*n = 0
		p.fail(fmt.Errorf("%w: %s on the frontend's memory: %v", errBadAddress, what, r))
	}
}

// TxBurst copies frames into the guest's receive queue (virtqueue 0) and
// returns how many were queued; it stops at the first frame that does not
// fit in the buffers the guest has posted, and the rest stay the caller's
// (vppsim counts them as drops). It never blocks and never allocates.
func (p *Port) TxBurst(frames [][]byte) (sent int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	defer p.survive(debug.SetPanicOnFault(true), &sent)
	if p.broken.Load() || len(p.rings) == 0 || !p.rings[0].ready {
		return 0
	}
	v := &p.rings[0]
	avail, err := v.pending()
	if err != nil {
		p.fail(err)
		return 0
	}
	n, bytes := 0, 0
	for _, f := range frames {
		ok, err := p.putFrame(v, avail, f)
		if err != nil {
			p.fail(err)
			break
		}
		if !ok {
			break
		}
		n++
		bytes += len(f)
	}
	if n > 0 {
		v.publishUsed()
		p.notify(v)
		p.txPackets.Add(uint64(n))
		p.txBytes.Add(uint64(bytes))
	}
	return n
}

// putFrame writes one frame, over several posted buffers when mergeable RX
// buffers were negotiated. If the guest runs out of buffers mid-frame, the
// partial work is rolled back: nothing is published.
func (p *Port) putFrame(v *vring, avail uint16, f []byte) (bool, error) {
	w := &p.rxw
	*w = rxWriter{hlen: p.hdrLen, frame: f}
	startAvail, startUsed := v.lastAvail, v.usedIdx
	nb := uint16(0)
	for w.pos == 0 || w.pos < w.total() {
		if v.lastAvail == avail {
			v.lastAvail, v.usedIdx = startAvail, startUsed
			return false, nil
		}
		head := v.availHead(v.lastAvail)
		written, err := v.writeChain(p.mem, head, w)
		if err != nil {
			return false, err
		}
		v.putUsed(v.usedIdx, head, written)
		v.usedIdx++
		v.lastAvail++
		nb++
		if !p.mrg {
			// One chain per frame; a frame longer than it arrives truncated,
			// which the guest's driver counts as a length error.
			break
		}
	}
	if w.nbuf != nil {
		binary.LittleEndian.PutUint16(w.nbuf, nb)
	}
	return true, nil
}

// RxBurst copies frames the guest transmitted (odd virtqueues) into bufs,
// reslicing each bufs[i] to its frame within its capacity, and returns how
// many it filled. Frames longer than their buffer are dropped and counted as
// RxTruncated. While frames flow it turns guest kicks off (polling); when a
// burst finds nothing it turns them back on, so the caller can block on
// RxReady.
func (p *Port) RxBurst(bufs [][]byte) (got int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	defer p.survive(debug.SetPanicOnFault(true), &got)
	if p.broken.Load() {
		return 0
	}
	n, bytes := 0, 0
	for q := 1; q < len(p.rings) && n < len(bufs); q += 2 {
		v := &p.rings[q]
		if !v.ready {
			continue
		}
		avail, err := v.pending()
		if err != nil {
			p.fail(err)
			return n
		}
		got := 0
		for n < len(bufs) && v.lastAvail != avail {
			head := v.availHead(v.lastAvail)
			b := bufs[n][:cap(bufs[n])]
			l, trunc, err := v.readChain(p.mem, head, p.hdrLen, b)
			if err != nil {
				p.fail(err)
				return n
			}
			v.putUsed(v.usedIdx, head, 0)
			v.usedIdx++
			v.lastAvail++
			got++
			if trunc {
				p.rxTrunc.Add(1)
				continue
			}
			bufs[n] = b[:l]
			n++
			bytes += l
		}
		if got > 0 {
			v.usedFlags |= usedFNoNotify
			v.publishUsed()
			p.notify(v)
		} else if v.usedFlags&usedFNoNotify != 0 {
			v.setNoNotify(false)
			// A frame queued before the guest saw kicks re-enabled would
			// never be kicked: look once more.
			if v.availIdx() != v.lastAvail {
				p.signalRx()
			}
		}
	}
	if n > 0 {
		p.rxPackets.Add(uint64(n))
		p.rxBytes.Add(uint64(bytes))
	}
	return n
}

// notify signals the call eventfd unless the guest asked not to be interrupted.
func (p *Port) notify(v *vring) {
	if v.call < 0 || v.availFlags()&availFNoInterrupt != 0 {
		return
	}
	// EAGAIN means the counter is saturated: the guest is signalled anyway.
	unix.Write(v.call, p.one[:])
}

// WaitRx blocks until the frontend kicks a TX queue (or a burst saw work
// left behind) or ctx ends. Call it after RxBurst returned 0; the token is a
// hint, so poll RxBurst again after it.
func (p *Port) WaitRx(ctx context.Context) error {
	select {
	case <-p.rxReady:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onBurstPanic, when set (fuzz targets and tests), sees every recovered
// panic that was not a memory fault: a bug the recovery would otherwise
// hide from them.
var onBurstPanic func(r any)
