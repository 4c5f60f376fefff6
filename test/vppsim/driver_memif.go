package vppsim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// sharedSocket is one memif master socket file and how many interfaces use it.
type sharedSocket struct {
	s    *memif.Socket
	refs int
}

func (dp *dataplane) acquireSocket(path string) (*memif.Socket, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if sh := dp.sockets[path]; sh != nil {
		sh.refs++
		return sh.s, nil
	}
	if err := ensureDir(path); err != nil {
		return nil, err
	}
	s, err := memif.Listen(path, dp.log)
	if err != nil {
		return nil, err
	}
	dp.sockets[path] = &sharedSocket{s: s, refs: 1}
	return s, nil
}

// releaseSocket closes the socket when its last master interface goes, as VPP does.
func (dp *dataplane) releaseSocket(path string) {
	dp.mu.Lock()
	sh := dp.sockets[path]
	if sh == nil {
		dp.mu.Unlock()
		return
	}
	sh.refs--
	if sh.refs > 0 {
		dp.mu.Unlock()
		return
	}
	delete(dp.sockets, path)
	dp.mu.Unlock()
	if err := sh.s.Close(); err != nil {
		dp.log.Warn("memif socket close failed", "socket", path, "err", err)
	}
}

// memifDriver plays VPP's side of one memif interface: master on a shared socket, or
// slave dialing the CNF's master.
type memifDriver struct {
	dp     *dataplane
	port   *Port
	ifc    *memif.Interface
	socket string // set for a master, to release the shared socket
	link   *linkWatch
	up     chan struct{} // wakes the receive supervisor on link up
	ctx    context.Context
	cancel context.CancelFunc
	// The receive supervisor starts on the first link up: an interface whose peer never
	// connects (most of a 20k-interface bulk test) runs no goroutine.
	rxMu      sync.Mutex
	rxStarted bool
	closed    bool

	txSide
}

func (dp *dataplane) newMemifDriver(p *Port, info PortInfo) (Driver, error) {
	spec := info.Memif
	mode := memif.Mode(spec.Mode)
	if mode == memif.ModeIP {
		p.minLen = 20 // an IPv4 header; there is no Ethernet header to check
	}
	d := &memifDriver{dp: dp, port: p, up: make(chan struct{}, 1), link: dp.watchLink(p)}
	d.ctx, d.cancel = driverCtx()
	d.burst = d.send
	cfg := memif.Config{
		ID: spec.ID, Name: info.Name, AppName: "VPP 25.10-vppsim", Secret: spec.Secret, Mode: mode,
		Log2RingSize: log2(spec.RingSize), BufferSize: uint32(spec.BufferSize),
		// VPP as slave transmits on s2m rings and receives on m2s rings.
		NumS2M: int(spec.TxQueues), NumM2S: int(spec.RxQueues),
		Logger: dp.log.With("interface", info.Name),
		OnLink: func(ev memif.LinkEvent) {
			if ev.Up {
				d.startRx()
				select {
				case d.up <- struct{}{}:
				default:
				}
			} else {
				dp.log.Info("memif link down", "interface", info.Name, "reason", ev.Reason)
			}
			d.link.set(ev.Up)
		},
	}
	var err error
	if spec.Master {
		var s *memif.Socket
		if s, err = dp.acquireSocket(spec.SocketFile); err == nil {
			d.socket = spec.SocketFile
			if d.ifc, err = memif.NewMaster(s, cfg); err != nil {
				dp.releaseSocket(spec.SocketFile)
			}
		}
	} else {
		if err = ensureDir(spec.SocketFile); err == nil {
			d.ifc, err = memif.NewSlave(spec.SocketFile, cfg)
		}
	}
	if err == nil {
		err = d.ifc.Connect()
		if err != nil {
			d.ifc.Close()
			if d.socket != "" {
				dp.releaseSocket(d.socket)
			}
		}
	}
	if err != nil {
		d.cancel()
		d.link.close()
		return nil, fmt.Errorf("memif %s on %s: %w", info.Name, spec.SocketFile, err)
	}
	return d, nil
}

// startRx starts the receive supervisor once, unless the driver is closed.
func (d *memifDriver) startRx() {
	d.rxMu.Lock()
	defer d.rxMu.Unlock()
	if d.rxStarted || d.closed {
		return
	}
	d.rxStarted = true
	d.dp.wg.Add(1)
	go func() {
		defer d.dp.wg.Done()
		d.superviseRx(d.ctx)
	}()
}

// superviseRx runs one receive loop per rx queue of each connection and starts them
// again after every reconnect.
func (d *memifDriver) superviseRx(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.up:
		}
		qs := d.ifc.RxQueues()
		if len(qs) == 0 {
			continue // went down again before we looked
		}
		var wg sync.WaitGroup
		for _, q := range qs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.rxLoop(ctx, q)
			}()
		}
		wg.Wait()
	}
}

// rxSet is one receive loop's batch of frame buffers.
type rxSet struct{ full, work [][]byte }

// rxSets lends buffer batches to the memif receive loops: a loop holds one
// while frames flow and gives it back while its queue is idle, so a
// thousand memifs with little traffic hold a few batches, not a thousand
// (2.4 MB each). A bounded free list rather than a sync.Pool: a pool is
// emptied by the garbage collector, and a loop waking after that would
// allocate and zero 2.4 MB on its receive path.
var rxSets = make(chan *rxSet, rxSetsIdle)

// rxSetsIdle bounds the idle batches kept (38 MB).
const rxSetsIdle = 16

func getRxSet() *rxSet {
	select {
	case b := <-rxSets:
		return b
	default:
		full, work := rxBuffers()
		return &rxSet{full: full, work: work}
	}
}

func putRxSet(b *rxSet) {
	select {
	case rxSets <- b:
	default: // enough idle ones kept
	}
}

// rxLoop moves bursts from one queue into forwarding until the connection ends.
func (d *memifDriver) rxLoop(ctx context.Context, q *memif.Queue) {
	b := getRxSet()
	defer func() { putRxSet(b) }()
	for {
		copy(b.work, b.full) // RxBurst reslices; start every burst from full capacity
		n, err := q.RxBurst(b.work)
		if n > 0 {
			d.port.ReceiveBurst(b.work[:n]) // forwarded (copied out) before it returns
		}
		if err != nil {
			return
		}
		if n > 0 {
			continue
		}
		putRxSet(b)
		err = q.PollWait(ctx, pollSpins)
		b = getRxSet()
		if err != nil {
			return
		}
	}
}

// send transmits a batch on tx queue 0 (VPP picks the queue by worker
// thread; vppsim forwards from one goroutine per rx queue and serialises on
// txSide's lock instead). It runs under that lock.
func (d *memifDriver) send(frames [][]byte) (int, DropReason) {
	qs := d.ifc.TxQueues()
	if len(qs) == 0 {
		return 0, DropLinkDown
	}
	sent := 0
	for try := 0; ; try++ {
		n, err := qs[0].TxBurst(frames[sent:])
		sent += n
		if err != nil {
			if errors.Is(err, memif.ErrDisconnected) {
				return sent, DropLinkDown
			}
			return sent, DropTxError
		}
		if sent == len(frames) || try == txRetries {
			break
		}
		runtime.Gosched()
	}
	return sent, DropTxFull
}

// Close disconnects the peer and frees the socket. It waits for no goroutine of its
// own (it runs under the API lock, and the link goroutine may be waiting for it);
// Sim.Close waits for them.
func (d *memifDriver) Close() error {
	d.close()
	d.rxMu.Lock()
	d.closed = true
	d.rxMu.Unlock()
	d.cancel()
	err := d.ifc.Close()
	if d.socket != "" {
		d.dp.releaseSocket(d.socket)
	}
	d.link.close()
	if err != nil {
		return fmt.Errorf("memif %s close: %w", d.port.Name(), err)
	}
	return nil
}
