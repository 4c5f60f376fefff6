package memif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Role is the side of the memif protocol an Interface plays.
type Role uint8

const (
	// RoleMaster listens on the socket and maps the slave's memory (VPP "master",
	// DPDK "server").
	RoleMaster Role = iota
	// RoleSlave connects, creates the shared memory and retries until the master is there
	// (VPP "slave", DPDK "client").
	RoleSlave
)

func (r Role) String() string {
	if r == RoleMaster {
		return "master"
	}
	return "slave"
}

// LinkEvent reports a link state change of an Interface.
type LinkEvent struct {
	Up bool
	// Reason says why the link went down (peer's DISCONNECT reason, protocol error, ...).
	Reason string
}

// Config describes one memif interface. Zero values take the defaults noted.
type Config struct {
	// ID distinguishes interfaces sharing one socket.
	ID uint32
	// Name is this interface's name sent in CONNECT/CONNECTED (default "memif<ID>").
	Name string
	// AppName goes into HELLO/INIT (default "vppmesh").
	AppName string
	// Secret, up to 24 bytes, must match between peers when the master sets one.
	Secret string
	// Mode is ModeEthernet or ModeIP; ModePuntInject is refused.
	Mode Mode
	// Log2RingSize is log2 of the descriptors per ring (default 10, at most 14). A slave
	// uses the smaller of it and the master's limit.
	Log2RingSize uint8
	// BufferSize is the size of one slave buffer (default 2048); longer frames chain.
	BufferSize uint32
	// NumS2M and NumM2S are the slave's queue counts (default 1 each, at most 255); the
	// master takes what its slave requests, as VPP does.
	NumS2M, NumM2S int
	// RetryInterval is the slave's pause between connection attempts (default 1s).
	RetryInterval time.Duration
	// RetryMax, when above RetryInterval, makes the pause double after each
	// failed attempt up to RetryMax, starting again from RetryInterval once a
	// session came up: quick to connect to a master that is about to appear,
	// without hundreds of slaves dialling an absent one every few milliseconds.
	RetryMax time.Duration
	// HandshakeTimeout bounds the exchange from HELLO to CONNECTED (default 5s).
	HandshakeTimeout time.Duration
	// OnLink is called on every link change, in order, from the connection's goroutine.
	// It must return quickly and must not call Disconnect or Close.
	OnLink func(LinkEvent)
	// Logger receives one line per event (default slog.Default()). Secrets are never logged.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		c.Name = fmt.Sprintf("memif%d", c.ID)
	}
	if c.AppName == "" {
		c.AppName = "vppmesh"
	}
	if c.Log2RingSize == 0 {
		c.Log2RingSize = 10
	}
	if c.BufferSize == 0 {
		c.BufferSize = 2048
	}
	if c.NumS2M == 0 {
		c.NumS2M = 1
	}
	if c.NumM2S == 0 {
		c.NumM2S = 1
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case len(c.Secret) > secretLen:
		return fmt.Errorf("memif %d: secret longer than %d bytes", c.ID, secretLen)
	case c.Mode == ModePuntInject:
		return fmt.Errorf("memif %d: punt/inject mode is not supported", c.ID)
	case c.Mode > ModePuntInject:
		return fmt.Errorf("memif %d: unknown mode %d", c.ID, c.Mode)
	case c.Log2RingSize > maxLog2Ring:
		return fmt.Errorf("memif %d: log2 ring size %d above %d", c.ID, c.Log2RingSize, maxLog2Ring)
	case c.BufferSize%8 != 0 || c.BufferSize > 1<<20:
		return fmt.Errorf("memif %d: buffer size %d must be a multiple of 8 up to 1 MiB", c.ID, c.BufferSize)
	case c.NumS2M < 1 || c.NumS2M > maxQueues || c.NumM2S < 1 || c.NumM2S > maxQueues:
		return fmt.Errorf("memif %d: queue counts %d/%d outside 1..%d", c.ID, c.NumS2M, c.NumM2S, maxQueues)
	}
	total := uint64(c.NumS2M+c.NumM2S) << c.Log2RingSize * (uint64(c.BufferSize) + descSize)
	if total >= 1<<32 {
		return fmt.Errorf("memif %d: shared memory of %d bytes exceeds 4 GiB", c.ID, total)
	}
	return nil
}

// Info is a snapshot of an Interface for dumps (vppsim's memif_details).
type Info struct {
	Role                 Role
	ID                   uint32
	Name                 string
	Mode                 Mode
	SocketPath           string
	AdminUp, LinkUp      bool
	RingSize             int
	BufferSize           uint32
	RxQueues, TxQueues   int
	PeerName, PeerIfName string
}

// Interface is one memif interface, either role. It owns its connection goroutines:
// Connect starts them, Disconnect and Close stop them and wait.
type Interface struct {
	cfg  Config
	role Role
	path string
	sock *Socket // master only
	log  *slog.Logger

	evMu    sync.Mutex // orders link events with the state they announce
	mu      sync.Mutex
	enabled bool
	closed  bool
	conn    *connection // current connection, from INIT (master) or dial (slave)
	up      bool
	// announced is the link state whose OnLink call has returned; WaitUp and WaitDown
	// follow it, so a waiter also knows the callback ran.
	announced bool
	changed   chan struct{} // closed and replaced on each announced change
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func newInterface(role Role, path string, cfg Config) (*Interface, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Interface{
		cfg: cfg, role: role, path: path, changed: make(chan struct{}),
		log: cfg.Logger.With("memif", cfg.Name, "id", cfg.ID, "role", role.String(), "socket", path),
	}, nil
}

// NewMaster registers a master interface with id cfg.ID on s. It accepts a slave once
// Connect was called.
func NewMaster(s *Socket, cfg Config) (*Interface, error) {
	i, err := newInterface(RoleMaster, s.path, cfg)
	if err != nil {
		return nil, err
	}
	i.sock = s
	if err := s.register(i); err != nil {
		return nil, err
	}
	return i, nil
}

// NewSlave creates a slave interface for the master socket at socketPath (a filesystem
// path, or "@name" for an abstract socket). Connect starts dialing.
func NewSlave(socketPath string, cfg Config) (*Interface, error) {
	return newInterface(RoleSlave, socketPath, cfg)
}

// Connect sets the interface administratively up: a slave starts dialing (retrying while
// the master is absent and reconnecting after a disconnect); a master accepts its slave.
// It does not wait for the link; use WaitUp or OnLink.
func (i *Interface) Connect() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return fmt.Errorf("memif %s: connect: interface closed", i.cfg.Name)
	}
	if i.enabled {
		return nil
	}
	i.enabled = true
	if i.role == RoleSlave {
		ctx, cancel := context.WithCancel(context.Background())
		i.cancel = cancel
		i.wg.Add(1)
		go func() {
			defer i.wg.Done()
			i.runSlave(ctx)
		}()
	}
	i.log.Info("memif admin up")
	return nil
}

// Disconnect sets the interface administratively down: the peer gets a DISCONNECT, the
// link goes down and every Queue of the connection returns ErrDisconnected. It returns
// after the connection is torn down.
func (i *Interface) Disconnect() error {
	i.mu.Lock()
	if !i.enabled {
		i.mu.Unlock()
		return nil
	}
	i.enabled = false
	conn, cancel := i.conn, i.cancel
	i.cancel = nil
	i.mu.Unlock()
	if conn != nil {
		conn.fail("disconnected by administrator")
	}
	if cancel != nil {
		cancel()
	}
	i.wg.Wait()
	if conn != nil {
		<-conn.done
	}
	i.log.Info("memif admin down")
	return nil
}

// Close disconnects and releases the interface (a master's id becomes free on its socket).
func (i *Interface) Close() error {
	err := i.Disconnect()
	i.mu.Lock()
	i.closed = true
	i.mu.Unlock()
	if i.sock != nil {
		i.sock.unregister(i)
	}
	return err
}

// IsUp reports whether the link is connected.
func (i *Interface) IsUp() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.up
}

// WaitUp blocks until the link is up or ctx ends.
func (i *Interface) WaitUp(ctx context.Context) error {
	for {
		i.mu.Lock()
		up, ch := i.announced, i.changed
		i.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memif %s: wait for link up: %w", i.cfg.Name, ctx.Err())
		case <-ch:
		}
	}
}

// WaitDown blocks until the link is down or ctx ends.
func (i *Interface) WaitDown(ctx context.Context) error {
	for {
		i.mu.Lock()
		up, ch := i.announced, i.changed
		i.mu.Unlock()
		if !up {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memif %s: wait for link down: %w", i.cfg.Name, ctx.Err())
		case <-ch:
		}
	}
}

// RxQueues returns the receive queues of the current connection (nil while down).
// They stay valid until the link goes down, then return ErrDisconnected.
func (i *Interface) RxQueues() []*Queue {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.up {
		return nil
	}
	return i.conn.rx
}

// TxQueues returns the transmit queues of the current connection (nil while down).
func (i *Interface) TxQueues() []*Queue {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.up {
		return nil
	}
	return i.conn.tx
}

// Info returns a snapshot of the interface's configuration and state.
func (i *Interface) Info() Info {
	i.mu.Lock()
	defer i.mu.Unlock()
	inf := Info{
		Role: i.role, ID: i.cfg.ID, Name: i.cfg.Name, Mode: i.cfg.Mode, SocketPath: i.path,
		AdminUp: i.enabled, LinkUp: i.up, RingSize: 1 << i.cfg.Log2RingSize, BufferSize: i.cfg.BufferSize,
	}
	if i.up {
		inf.RxQueues, inf.TxQueues = len(i.conn.rx), len(i.conn.tx)
		inf.RingSize = int(i.conn.rx[0].r.size)
		inf.PeerName, inf.PeerIfName = i.conn.peerName, i.conn.peerIf
	}
	return inf
}

// claim makes conn the interface's connection if it is enabled and free.
func (i *Interface) claim(conn *connection) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case !i.enabled:
		return errors.New("interface is administratively down")
	case i.conn != nil:
		return errors.New("already connected")
	}
	i.conn = conn
	return nil
}

func (i *Interface) setUp(conn *connection) {
	i.evMu.Lock()
	defer i.evMu.Unlock()
	i.mu.Lock()
	if i.conn != conn {
		i.mu.Unlock()
		return
	}
	i.up = true
	i.mu.Unlock()
	i.log.Info("memif link up", "peer", conn.peerName, "peer_if", conn.peerIf,
		"rx_queues", len(conn.rx), "tx_queues", len(conn.tx), "ring_size", conn.rx[0].r.size)
	if i.cfg.OnLink != nil {
		i.cfg.OnLink(LinkEvent{Up: true})
	}
	i.announce(true)
}

// announce publishes the state to WaitUp/WaitDown after OnLink returned.
func (i *Interface) announce(up bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.announced = up
	close(i.changed)
	i.changed = make(chan struct{})
}

// release tears conn down and, if it was up, announces link down.
func (i *Interface) release(conn *connection, reason string) {
	conn.teardown()
	i.evMu.Lock()
	defer i.evMu.Unlock()
	i.mu.Lock()
	wasUp := i.up && i.conn == conn
	if i.conn == conn {
		i.conn = nil
		i.up = false
	}
	i.mu.Unlock()
	close(conn.done)
	if wasUp {
		i.log.Info("memif link down", "reason", reason)
		if i.cfg.OnLink != nil {
			i.cfg.OnLink(LinkEvent{Up: false, Reason: reason})
		}
		i.announce(false)
	} else {
		i.log.Warn("memif connection failed", "reason", reason)
	}
}
