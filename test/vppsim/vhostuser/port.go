package vhostuser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/backoff"
	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// Config describes one vhost-user interface.
type Config struct {
	// SocketPath is the unix socket shared with the frontend.
	SocketPath string
	// Client makes the backend connect (and reconnect) to a listening
	// frontend, VPP's client mode (testpmd "server=1"). By default the
	// backend listens, VPP's server mode.
	Client bool
	// Name labels log lines, e.g. "VirtualEthernet0/0/0".
	Name string
	// MaxQueuePairs is the most queue pairs a frontend may use (default 1).
	MaxQueuePairs int
	// DisableMrgRxbuf stops advertising VIRTIO_NET_F_MRG_RXBUF.
	DisableMrgRxbuf bool
	// ReconnectInterval paces dials in client mode (default 200ms).
	ReconnectInterval time.Duration
	// Logger receives one line per connection event; nil means slog.Default().
	Logger *slog.Logger
	// OnLink is called, from the protocol goroutine and without locks held,
	// when the link goes up (rings of queue pair 0 set up and enabled) or
	// down (rings stopped or the frontend gone).
	OnLink func(up bool)
}

// Stats are cumulative counters of a Port.
type Stats struct {
	RxPackets, RxBytes, RxTruncated uint64 // from the guest (RxBurst)
	TxPackets, TxBytes              uint64 // to the guest (TxBurst)
	Connects, ProtocolErrors        uint64
}

// Port is one vhost-user interface: it owns the socket, the connection state
// machine and the virtqueues. TxBurst and RxBurst may run concurrently with
// each other and with the protocol, but each must have a single caller.
type Port struct {
	cfg    Config
	log    *slog.Logger
	ln     *net.UnixListener
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rxReady chan struct{}
	one     [8]byte // eventfd increment, a field so that writing it never allocates
	linkUp  atomic.Bool
	broken  atomic.Bool // the data path found bad guest data; the connection is being dropped

	mu            sync.RWMutex // guards everything below; data path takes it shared
	conn          *net.UnixConn
	mem           *memTable
	rings         []vring
	features      uint64
	protoFeatures uint64
	hdrLen        int
	mrg           bool
	rxw           rxWriter // TxBurst scratch, reused so that bursts do not allocate

	rxPackets, rxBytes, rxTrunc atomic.Uint64
	txPackets, txBytes          atomic.Uint64
	connects, protoErrors       atomic.Uint64
}

// Open starts serving cfg.SocketPath: it listens (server mode) or starts
// dialing (client mode) and returns at once. Close stops it.
func Open(ctx context.Context, cfg Config) (*Port, error) {
	if cfg.SocketPath == "" {
		return nil, errors.New("vhost-user: empty socket path")
	}
	if cfg.MaxQueuePairs <= 0 {
		cfg.MaxQueuePairs = 1
	}
	if cfg.MaxQueuePairs > 128 {
		return nil, fmt.Errorf("vhost-user %s: %d queue pairs, at most 128", cfg.SocketPath, cfg.MaxQueuePairs)
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = 200 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Port{
		cfg:     cfg,
		log:     log.With("vhost", cfg.Name, "socket", cfg.SocketPath),
		rxReady: make(chan struct{}, 1),
		one:     [8]byte{1},
	}
	p.resetLocked()
	ctx, p.cancel = context.WithCancel(ctx)
	if cfg.Client {
		p.wg.Add(1)
		go p.dialLoop(ctx)
		return p, nil
	}
	// A socket left by a previous run would make listen fail; it is
	// removed only when nobody listens on it (never a live listener).
	if err := sockfile.RemoveIfStale(cfg.SocketPath); err != nil {
		p.cancel()
		return nil, fmt.Errorf("vhost-user %s: listen: %w", cfg.SocketPath, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.SocketPath, Net: "unix"})
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("vhost-user %s: listen: %w", cfg.SocketPath, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.acceptLoop(ctx)
	return p, nil
}

// Close stops the port, drops the frontend and releases its memory.
func (p *Port) Close() error {
	p.cancel()
	if p.ln != nil {
		p.ln.Close()
	}
	p.wg.Wait()
	return nil
}

// LinkUp reports whether queue pair 0 is set up and enabled.
func (p *Port) LinkUp() bool { return p.linkUp.Load() }

// RxReady delivers a token after the frontend kicked a TX queue, so that a
// consumer whose RxBurst returned 0 can block instead of spinning.
func (p *Port) RxReady() <-chan struct{} { return p.rxReady }

// Stats returns the counters.
func (p *Port) Stats() Stats {
	return Stats{
		RxPackets: p.rxPackets.Load(), RxBytes: p.rxBytes.Load(), RxTruncated: p.rxTrunc.Load(),
		TxPackets: p.txPackets.Load(), TxBytes: p.txBytes.Load(),
		Connects: p.connects.Load(), ProtocolErrors: p.protoErrors.Load(),
	}
}

func (p *Port) acceptLoop(ctx context.Context) {
	defer p.wg.Done()
	var prev *net.UnixConn
	var prevDone chan struct{}
	var bo backoff.Accept
	for {
		c, err := p.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait and accept again rather than
			// leaving the port unreachable for good.
			d := bo.Next()
			p.log.Error("vhost-user accept failed; retrying", "err", err, "retry_in", d)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		bo.Reset()
		if prevDone != nil {
			select {
			case <-prevDone:
			default:
				// As VPP does: a new frontend replaces the old one (a VM that
				// restarted before its old socket timed out).
				p.log.Info("vhost-user new frontend replaces the connected one")
				prev.CloseRead()
				<-prevDone
			}
		}
		done := make(chan struct{})
		prev, prevDone = c, done
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer close(done)
			p.serve(ctx, c)
		}()
	}
}

func (p *Port) dialLoop(ctx context.Context) {
	defer p.wg.Done()
	var d net.Dialer
	logged := false
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "unix", p.cfg.SocketPath)
		if err == nil {
			logged = false
			p.serve(ctx, c.(*net.UnixConn))
		} else if !logged {
			// One line per outage, not one per retry.
			p.log.Info("vhost-user frontend not reachable, retrying", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.cfg.ReconnectInterval):
		}
	}
}

// serve runs the protocol on one connection until it ends, then tears the
// connection's state down.
func (p *Port) serve(ctx context.Context, c *net.UnixConn) {
	p.connects.Add(1)
	p.log.Info("vhost-user frontend connected")
	p.mu.Lock()
	p.resetLocked()
	p.conn = c
	p.broken.Store(false)
	p.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	var rd msgReader
	for {
		h, payload, fds, err := rd.read(c)
		if err != nil {
			if ctx.Err() != nil || p.broken.Load() {
				break
			}
			if errors.Is(err, errMalformed) {
				p.protoErrors.Add(1)
				p.log.Warn("vhost-user dropping frontend", "err", err)
			} else {
				p.log.Info("vhost-user frontend disconnected", "err", err)
			}
			break
		}
		if p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.Debug("vhost-user request", "request", requestName(h.Request), "size", h.Size, "fds", len(fds), "payload", fmt.Sprintf("%x", payload))
		}
		err = p.handle(c, h, payload, fds)
		closeFDs(fds)
		if err != nil {
			p.protoErrors.Add(1)
			p.log.Warn("vhost-user dropping frontend", "request", requestName(h.Request), "err", err)
			break
		}
	}
	p.mu.Lock()
	p.resetLocked()
	p.conn = nil
	p.mu.Unlock()
	p.setLink(false)
	// Hang up only now: a frontend that reconnects as soon as it sees the
	// close finds its old state gone.
	c.Close()
}

// resetLocked forgets the connection's negotiated state and releases its
// memory and fds.
func (p *Port) resetLocked() {
	for i := range p.rings {
		p.rings[i].closeFDs()
	}
	p.rings = make([]vring, 2*p.cfg.MaxQueuePairs)
	for i := range p.rings {
		p.rings[i] = newVring()
	}
	p.mem.unmap()
	p.mem = nil
	p.features, p.protoFeatures = 0, 0
	p.hdrLen, p.mrg = 10, false
}

// setLink records the link state and reports changes.
func (p *Port) setLink(up bool) {
	if p.linkUp.Swap(up) == up {
		return
	}
	p.log.Info("vhost-user link changed", "up", up)
	if p.cfg.OnLink != nil {
		p.cfg.OnLink(up)
	}
}

// fail drops the connection after the data path met bad guest data. Shutting
// down our read side wakes the protocol goroutine, which tears the state down
// and then closes the socket.
func (p *Port) fail(err error) {
	if !p.broken.CompareAndSwap(false, true) {
		return
	}
	p.protoErrors.Add(1)
	p.log.Warn("vhost-user dropping frontend: bad guest data", "err", err)
	if p.conn != nil {
		p.conn.CloseRead()
	}
}
