package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	gomemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// samples is how many steady cross-connects carry traffic during a fault;
// the cnf-crash fault never picks them.
const samples = 3

// flow is CNF traffic over one cross-connect: a memif peer on side a sends
// sequence-numbered frames, the peer on side b counts what arrives. A
// frame that was queued on a's ring and never reached b is lost.
type flow struct {
	name       string
	a, b       *gomemif.Interface
	sent, recv atomic.Uint64
	dups       atomic.Uint64
	// ready is set once a warm-up frame crossed: counting starts only
	// on a proven path (a peer's link comes up a moment after WaitUp).
	ready  atomic.Bool
	stop   chan struct{} // ends the sender
	stopRx chan struct{} // ends the receiver, after the drain
	sender sync.WaitGroup
	wg     sync.WaitGroup
}

func (s *suite) startFlow(ctx context.Context, i int) (*flow, error) {
	f, id := i%sockets, 2*(i/sockets)+1
	sock := filepath.Join(s.tg.Dir, fmt.Sprintf("x%d.sock", f))
	fl := &flow{name: fmt.Sprintf("x%d", i), stop: make(chan struct{}), stopRx: make(chan struct{})}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	for side, p := range []**gomemif.Interface{&fl.a, &fl.b} {
		// The receiving side's ring holds 1 s of this flow: a receiver the
		// loaded machine did not schedule for a while must not turn into
		// "lost" (VPP drops what does not fit). A path the agent breaks
		// drops in VPP, before any ring, whatever its size.
		log2 := uint8(10)
		if side == 1 {
			log2 = 12
		}
		*p, err = gomemif.NewSlave(sock, gomemif.Config{ID: uint32(id + side), Log2RingSize: log2, BufferSize: 2048,
			RetryInterval: 50 * time.Millisecond, Logger: quiet})
		if err == nil {
			err = (*p).Connect()
		}
		if err == nil {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = (*p).WaitUp(wctx)
			cancel()
		}
		if err != nil {
			fl.close()
			return nil, fmt.Errorf("flow %s side %d: %w", fl.name, side, err)
		}
	}
	fl.sender.Add(1)
	fl.wg.Add(1)
	go fl.send()
	go fl.receive()
	return fl, nil
}

func (fl *flow) send() {
	defer fl.sender.Done()
	frames := make([][]byte, 8)
	for i := range frames {
		f := make([]byte, 64)
		copy(f, []byte{0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x88, 0xb5})
		frames[i] = f
	}
	var seq uint64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-fl.stop:
			return
		case <-tick.C:
		}
		q := fl.a.TxQueues()
		if len(q) == 0 {
			continue
		}
		if !fl.ready.Load() {
			binary.BigEndian.PutUint64(frames[0][14:], 0) // warm-up
			if _, err := q[0].TxBurst(frames[:1]); err != nil {
				return
			}
			continue
		}
		for _, f := range frames {
			binary.BigEndian.PutUint64(f[14:], seq+1)
			seq++
		}
		n, err := q[0].TxBurst(frames)
		// Frames the ring did not take were never sent: back-pressure,
		// not loss. Their numbers are reused.
		seq -= uint64(len(frames) - n)
		fl.sent.Add(uint64(n))
		if err != nil {
			return
		}
	}
}

func (fl *flow) receive() {
	defer fl.wg.Done()
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	var last uint64
	for {
		select {
		case <-fl.stopRx:
			return
		default:
		}
		q := fl.b.RxQueues()
		if len(q) == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		n, err := q[0].RxBurst(bufs)
		if err != nil {
			return
		}
		for _, b := range bufs[:n] {
			if len(b) >= 22 && b[12] == 0x88 && b[13] == 0xb5 {
				seq := binary.BigEndian.Uint64(b[14:])
				if seq == 0 {
					fl.ready.Store(true)
					continue
				}
				if seq <= last {
					fl.dups.Add(1)
					continue
				}
				last = seq
				fl.recv.Add(1)
			}
		}
		if n == 0 {
			time.Sleep(500 * time.Microsecond)
		}
	}
}

// finish stops sending, lets the path drain, and returns frames lost.
func (fl *flow) finish() (lost uint64, sent uint64) {
	if fl == nil {
		return 0, 0
	}
	close(fl.stop)
	fl.sender.Wait()
	// Drain: frames still on their way (a VPP busy with a burst of API
	// calls forwards late, not never) are waited for as long as some keep
	// arriving; a path that delivers nothing for 2 s has lost the rest.
	deadline := time.Now().Add(15 * time.Second)
	last, lastMove := fl.recv.Load(), time.Now()
	for fl.recv.Load() < fl.sent.Load() && time.Now().Before(deadline) && time.Since(lastMove) < 2*time.Second {
		time.Sleep(10 * time.Millisecond)
		if r := fl.recv.Load(); r != last {
			last, lastMove = r, time.Now()
		}
	}
	close(fl.stopRx)
	fl.wg.Wait()
	fl.close()
	s, r := fl.sent.Load(), fl.recv.Load()
	if r >= s {
		return 0, s
	}
	return s - r, s
}

func (fl *flow) close() {
	if fl.a != nil {
		_ = fl.a.Close()
	}
	if fl.b != nil {
		_ = fl.b.Close()
	}
}
