package vppsim

import (
	"context"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// Tuning of the built-in drivers' packet loops.
const (
	// rxBatch is the most frames one receive burst takes, VPP's frame size.
	rxBatch = 256
	// rxBufSize holds a 9000-byte jumbo frame (link MTU) with room to spare.
	rxBufSize = 9216 + 256
	// pollSpins is how often an idle queue is re-checked before the loop sleeps on the
	// peer's interrupt: cheap while traffic flows, fair to other processes on 2 cores.
	pollSpins = 64
	// txRetries is how often a transmit burst is retried on a full ring before the rest
	// is dropped and counted. VPP's memif and vhost-user tx nodes retry a few times
	// without waiting, then count "no free tx slots"; vppsim yields between retries
	// because its peer may need this very core to drain the ring.
	txRetries = 8
)

// dataplane owns what the built-in drivers share: memif master sockets (one per socket
// file, shared by every master interface on it) and the goroutines of every driver,
// which Sim.Close waits for after it has released the API lock.
type dataplane struct {
	log *slog.Logger

	mu      sync.Mutex
	sockets map[string]*sharedSocket

	wg sync.WaitGroup
}

func newDataplane(log *slog.Logger) *dataplane {
	return &dataplane{log: log, sockets: map[string]*sharedSocket{}}
}

// attach is the default DriverFactory: memif and vhost-user interfaces get real
// drivers, the other kinds have no packet I/O.
func (dp *dataplane) attach(p *Port, info PortInfo) (Driver, error) {
	switch {
	case info.Memif != nil:
		return dp.newMemifDriver(p, info)
	case info.VhostUser != nil:
		return dp.newVhostDriver(p, info)
	case info.AfPacketHost != "":
		return dp.newAfPacketDriver(p, info.AfPacketHost)
	}
	return nil, nil
}

// NoDrivers is a DriverFactory that gives no interface packet I/O: vppsim is then a
// control plane only and opens no memif or vhost-user sockets.
func NoDrivers(*Port, PortInfo) (Driver, error) { return nil, nil }

// ensureDir checks that the directory of a memif or vhost-user socket
// exists. VPP creates directories only for relative names under its own
// runtime dir; for an absolute path it checks the directory and fails
// otherwise. Creating directories anywhere a config names would let etcd
// values plant root-owned directories across the file system.
func ensureDir(path string) error {
	return sockfile.DirExists(path)
}

// log2 returns log2 of a power-of-two ring size.
func log2(n uint32) uint8 {
	if n == 0 {
		return 0
	}
	return uint8(bits.TrailingZeros32(n))
}

// linkWatch hands a driver's link changes to Port.SetLink from its own goroutine:
// the driver's callbacks run where the API lock may be held (factory, Close), and
// SetLink takes that lock. Quick flaps collapse to the latest state. The goroutine starts
// with the first change, so the many interfaces whose peer never connects cost none.
type linkWatch struct {
	dp     *dataplane
	port   *Port
	state  atomic.Bool
	notify chan struct{}
	stop   chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
}

func (dp *dataplane) watchLink(p *Port) *linkWatch {
	return &linkWatch{dp: dp, port: p, notify: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (l *linkWatch) run() {
	defer l.dp.wg.Done()
	last := false
	for {
		select {
		case <-l.stop:
			return
		case <-l.notify:
		}
		if up := l.state.Load(); up != last {
			last = up
			l.port.SetLink(up)
		}
	}
}

func (l *linkWatch) set(up bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !l.started {
		l.started = true
		l.dp.wg.Add(1)
		go l.run()
	}
	l.mu.Unlock()
	l.state.Store(up)
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *linkWatch) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
}

// rxBuffers is one receive loop's batch of frame buffers, allocated once per driver
// queue and reused for every burst.
func rxBuffers() ([][]byte, [][]byte) {
	backing := make([]byte, rxBatch*rxBufSize)
	full := make([][]byte, rxBatch)
	for i := range full {
		full[i] = backing[i*rxBufSize : (i+1)*rxBufSize : (i+1)*rxBufSize]
	}
	return full, make([][]byte, rxBatch)
}

// driverCtx is the lifetime of one driver's goroutines.
func driverCtx() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
