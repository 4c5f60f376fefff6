package memif

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrDisconnected is returned by queue operations after the connection that owned
	// the queue went down; take the new queues after the next link-up.
	ErrDisconnected = errors.New("memif queue disconnected")
	// ErrFrameTooLarge means a frame needs more descriptors than the whole ring holds.
	ErrFrameTooLarge = errors.New("memif frame larger than the ring")
	// ErrBadDescriptor means the peer wrote a descriptor or ring index that points outside
	// the shared memory; the interface disconnects with this reason.
	ErrBadDescriptor = errors.New("memif bad descriptor from peer")
)

// queueKind says which side of which ring a Queue drives; the four cases differ in who
// owns the buffers and which of head/tail is ours (memif.h: the slave owns all buffers).
type queueKind uint8

const (
	slaveTx  queueKind = iota // S2M producer: fills its own buffers, moves head
	slaveRx                   // M2S consumer: reads up to tail, refills by moving head
	masterTx                  // M2S producer: writes into buffers the slave offered, moves tail
	masterRx                  // S2M consumer: reads up to head, releases by moving tail
)

// QueueStats are a queue's counters since its connection came up.
type QueueStats struct {
	Packets, Bytes uint64
	// Drops counts received frames larger than the caller's buffer.
	Drops uint64
}

// Queue is one direction of one memif ring pair. A Queue is used by one goroutine at a
// time (its mutex only orders bursts against teardown); bursts allocate nothing.
type Queue struct {
	mu     sync.Mutex
	closed bool
	kind   queueKind
	index  int
	r      *ring
	// regions are the mapped regions of the connection, indexed by descriptor region.
	regions [][]byte
	// cursor is our private position: the next slot to produce or consume.
	cursor uint16
	// head is the slave receiver's published refill position.
	head uint16
	// Slave-owned buffers of this ring: slot s uses region 0 at bufBase+s*bufSize.
	bufBase, bufSize uint32

	evfd   int      // interrupt eventfd of this ring (not owned when evf is set)
	evf    *os.File // rx side: for blocking reads through the poller
	evbuf  [8]byte
	one    [8]byte
	waitDL bool // a read deadline is set from a cancelled Wait

	packets, bytes, drops atomic.Uint64
	fail                  func(reason string)
}

func newQueue(kind queueKind, index int, r *ring, regions [][]byte, evfd int, fail func(string)) (*Queue, error) {
	q := &Queue{kind: kind, index: index, r: r, regions: regions, evfd: evfd, fail: fail}
	binary.LittleEndian.PutUint64(q.one[:], 1)
	if kind == slaveRx || kind == masterRx {
		f, err := eventFile(evfd, fmt.Sprintf("memif-rx%d", index))
		if err != nil {
			return nil, err
		}
		q.evf = f
		// Start in polling mode; Wait unmasks interrupts only while it sleeps.
		r.setFlags(ringFlagMask)
	}
	return q, nil
}

// Index is the queue (ring) index within its direction.
func (q *Queue) Index() int { return q.index }

// RingSize is the number of descriptors in the ring.
func (q *Queue) RingSize() int { return int(q.r.size) }

// Stats returns the queue's counters; safe from any goroutine.
func (q *Queue) Stats() QueueStats {
	return QueueStats{Packets: q.packets.Load(), Bytes: q.bytes.Load(), Drops: q.drops.Load()}
}

// close marks the queue dead and closes its eventfd; after it returns no burst touches
// the shared memory, so the regions may be unmapped.
func (q *Queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if q.evf != nil {
		_ = q.evf.Close()
	} else if q.evfd >= 0 {
		_ = unix.Close(q.evfd)
	}
	q.evfd = -1
}

// buffer returns the shared bytes a descriptor points to, or false when the peer's
// region, offset or length lies outside what is mapped.
func (q *Queue) buffer(region uint16, off, length uint32) ([]byte, bool) {
	if int(region) >= len(q.regions) {
		return nil, false
	}
	mem := q.regions[region]
	end := uint64(off) + uint64(length)
	if end > uint64(len(mem)) {
		return nil, false
	}
	return mem[off:end], true
}

// bad reports a protocol violation found on the data path; the owner disconnects.
func (q *Queue) bad(format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	if q.fail != nil {
		q.fail(reason)
	}
	return fmt.Errorf("%w: queue %d: %s", ErrBadDescriptor, q.index, reason)
}

// survive runs deferred in every burst: shared memory is the peer's, and a
// fault touching it (a file shrunk under us, a mapping gone) or a panic on
// its data must cost this peer its connection, not the process. Faults
// become panics through debug.SetPanicOnFault, set for the burst's
// duration; oldFault is the goroutine's previous setting.
func (q *Queue) survive(oldFault bool, n *int, err *error) {
	debug.SetPanicOnFault(oldFault)
	if r := recover(); r != nil {
		what := "panic"
		if _, ok := r.(interface{ Addr() uintptr }); ok {
			what = "memory fault"
		} else if onBurstPanic != nil {
			onBurstPanic(r)
		}
		*n = 0
		*err = q.bad("%s on the peer's shared memory: %v", what, r)
	}
}

func (q *Queue) kick() {
	if q.r.flags()&ringFlagMask == 0 {
		// EAGAIN means the counter is already huge: the peer is awake anyway.
		_, _ = unix.Write(q.evfd, q.one[:])
	}
}

// TxBurst enqueues frames from the start of pkts and returns how many were queued. Ring
// space is checked per frame (a frame longer than one buffer takes several chained
// descriptors), so a full ring yields n < len(pkts) with a nil error and nothing
// unread is ever overwritten. Frames are copied; pkts may be reused on return.
func (q *Queue) TxBurst(pkts [][]byte) (n int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.survive(debug.SetPanicOnFault(true), &n, &err)
	if q.closed {
		return 0, ErrDisconnected
	}
	if q.kind != slaveTx && q.kind != masterTx {
		return 0, fmt.Errorf("memif queue %d: TxBurst on a receive queue", q.index)
	}
	var nb uint64
	if q.kind == slaveTx {
		n, nb, err = q.txSlave(pkts)
	} else {
		n, nb, err = q.txMaster(pkts)
	}
	if n > 0 {
		q.packets.Add(uint64(n))
		q.bytes.Add(nb)
		q.kick()
	}
	return n, err
}

func (q *Queue) txSlave(pkts [][]byte) (int, uint64, error) {
	r := q.r
	head := q.cursor
	used := head - r.tail()
	if used > r.size {
		return 0, 0, q.bad("tail %d ahead of head %d", r.tail(), head)
	}
	free := int(r.size - used)
	region := q.regions[0]
	var nb uint64
	for i, p := range pkts {
		need := (len(p) + int(q.bufSize) - 1) / int(q.bufSize)
		if need == 0 {
			need = 1
		}
		if need > int(r.size) {
			q.publishSlaveTx(head)
			return i, nb, fmt.Errorf("%w: %d bytes need %d descriptors, ring has %d", ErrFrameTooLarge, len(p), need, r.size)
		}
		if need > free {
			q.publishSlaveTx(head)
			return i, nb, nil
		}
		free -= need
		for rest := p; ; {
			slot := head & r.mask
			off := q.bufBase + uint32(slot)*q.bufSize
			c := copy(region[off:off+q.bufSize], rest)
			rest = rest[c:]
			d := &r.descs[slot]
			d.region, d.offset, d.length, d.flags = 0, off, uint32(c), 0
			head++
			if len(rest) == 0 {
				break
			}
			d.flags = descNext
		}
		nb += uint64(len(p))
	}
	q.publishSlaveTx(head)
	return len(pkts), nb, nil
}

func (q *Queue) publishSlaveTx(head uint16) {
	if head != q.cursor {
		q.cursor = head
		q.r.setHead(head)
	}
}

func (q *Queue) txMaster(pkts [][]byte) (int, uint64, error) {
	r := q.r
	cur := q.cursor
	avail := r.head() - cur
	if avail > r.size {
		return 0, 0, q.bad("head %d more than a ring ahead of tail %d", r.head(), cur)
	}
	var nb uint64
	n := 0
	for _, p := range pkts {
		// First pass reads the offered capacities so a frame that does not fit leaves
		// the descriptors untouched for the next burst.
		need, capSum := uint16(0), 0
		for capSum < len(p) || need == 0 {
			if need == avail {
				if avail == r.size {
					q.publishMasterTx(cur)
					return n, nb, fmt.Errorf("%w: %d bytes exceed the %d buffers offered", ErrFrameTooLarge, len(p), r.size)
				}
				q.publishMasterTx(cur)
				return n, nb, nil
			}
			d := &r.descs[(cur+need)&r.mask]
			if _, ok := q.buffer(d.region, d.offset, d.length); !ok {
				q.publishMasterTx(cur)
				return n, nb, q.bad("descriptor %d: region %d offset %d length %d outside shared memory", (cur+need)&r.mask, d.region, d.offset, d.length)
			}
			capSum += int(d.length)
			need++
		}
		for rest, k := p, uint16(0); k < need; k++ {
			d := &r.descs[cur&r.mask]
			buf, _ := q.buffer(d.region, d.offset, d.length)
			c := copy(buf, rest)
			rest = rest[c:]
			d.length = uint32(c)
			d.flags = 0
			if k+1 < need {
				d.flags = descNext
			}
			cur++
		}
		avail -= need
		nb += uint64(len(p))
		n++
	}
	q.publishMasterTx(cur)
	return n, nb, nil
}

func (q *Queue) publishMasterTx(cur uint16) {
	if cur != q.cursor {
		q.cursor = cur
		q.r.setTail(cur)
	}
}

// RxBurst copies received frames into bufs, at most len(bufs) of them, and returns the
// count; bufs[i] is resliced to the frame's length within its capacity. Chained
// descriptors are joined into one frame. A frame longer than cap(bufs[i]) is dropped
// and counted in Stats().Drops.
func (q *Queue) RxBurst(bufs [][]byte) (n int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.survive(debug.SetPanicOnFault(true), &n, &err)
	if q.closed {
		return 0, ErrDisconnected
	}
	r := q.r
	var limit uint16
	switch q.kind {
	case masterRx:
		limit = r.head()
	case slaveRx:
		limit = r.tail()
		// The master may only hand back buffers we offered.
		if limit-q.cursor > q.head-q.cursor {
			return 0, q.bad("tail %d beyond offered head %d", limit, q.head)
		}
	default:
		return 0, fmt.Errorf("memif queue %d: RxBurst on a transmit queue", q.index)
	}
	cur := q.cursor
	avail := limit - cur
	if avail > r.size {
		return 0, q.bad("producer index %d more than a ring ahead of %d", limit, cur)
	}
	var nb uint64
	for n < len(bufs) && avail > 0 {
		dst := bufs[n][:cap(bufs[n])]
		total, k, fits, complete := 0, uint16(0), true, false
		for k < avail {
			d := &r.descs[(cur+k)&r.mask]
			src, ok := q.buffer(d.region, d.offset, d.length)
			if !ok {
				err = q.bad("descriptor %d: region %d offset %d length %d outside shared memory", (cur+k)&r.mask, d.region, d.offset, d.length)
				break
			}
			if fits && total+len(src) <= len(dst) {
				copy(dst[total:], src)
			} else {
				fits = false
			}
			total += len(src)
			k++
			if d.flags&descNext == 0 {
				complete = true
				break
			}
		}
		if err != nil {
			break
		}
		if !complete {
			if k == r.size {
				err = q.bad("chain of %d descriptors never ends", k)
			}
			break // the rest of the chain is not published yet
		}
		cur += k
		avail -= k
		if !fits {
			q.drops.Add(1)
			continue
		}
		bufs[n] = dst[:total]
		nb += uint64(total)
		n++
	}
	if cur != q.cursor {
		q.cursor = cur
		if q.kind == masterRx {
			r.setTail(cur)
		} else {
			q.refill()
		}
	}
	if n > 0 {
		q.packets.Add(uint64(n))
		q.bytes.Add(nb)
	}
	return n, err
}

// refill offers every consumed slot back to the master with the slave's own buffer.
func (q *Queue) refill() {
	r := q.r
	head := q.head
	for head-q.cursor < r.size {
		slot := head & r.mask
		d := &r.descs[slot]
		d.region, d.offset, d.length, d.flags = 0, q.bufBase+uint32(slot)*q.bufSize, q.bufSize, 0
		head++
	}
	q.head = head
	r.setHead(head)
}

// pending reports whether frames wait in a receive ring. Caller holds q.mu.
func (q *Queue) pending() bool {
	if q.kind == masterRx {
		return q.r.head() != q.cursor
	}
	return q.r.tail() != q.cursor
}

// Wait blocks until the receive queue has frames (one waiter per queue), the connection goes down
// (ErrDisconnected) or ctx ends.
func (q *Queue) Wait(ctx context.Context) error { return q.PollWait(ctx, 0) }

// PollWait is the adaptive wait for a dataplane loop: it re-checks the ring spins times,
// yielding the processor in between (cheap while traffic flows, and fair to other
// dataplane goroutines and processes on few cores), then unmasks the peer's interrupt
// and sleeps on the eventfd. Interrupts are masked again on return, so a busy queue
// costs the producer no syscalls.
func (q *Queue) PollWait(ctx context.Context, spins int) error {
	for i := 0; ; i++ {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrDisconnected
		}
		if q.evf == nil {
			q.mu.Unlock()
			return fmt.Errorf("memif queue %d: Wait on a transmit queue", q.index)
		}
		if q.pending() {
			q.mu.Unlock()
			return nil
		}
		if i >= spins {
			break // still holding q.mu
		}
		q.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	q.r.setFlags(0)
	// Re-check after unmasking: a frame published before the producer saw the flag
	// would otherwise not be signalled.
	if q.pending() {
		q.r.setFlags(ringFlagMask)
		q.mu.Unlock()
		return nil
	}
	f := q.evf
	if q.waitDL {
		_ = f.SetReadDeadline(time.Time{})
		q.waitDL = false
	}
	q.mu.Unlock()

	var err error
	deadlineSet := false
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
		_, err = f.Read(q.evbuf[:])
		// If the cancel hook ran, the deadline stays on the file until the next Wait.
		deadlineSet = !stop()
	} else {
		_, err = f.Read(q.evbuf[:])
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.waitDL = q.waitDL || deadlineSet
	if q.closed {
		return ErrDisconnected
	}
	q.r.setFlags(ringFlagMask)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("memif queue %d: read interrupt eventfd: %w", q.index, err)
	}
	return nil
}

// onBurstPanic, when set (fuzz targets and tests), sees every recovered
// panic that was not a memory fault: a bug the recovery would otherwise
// hide from them.
var onBurstPanic func(r any)
