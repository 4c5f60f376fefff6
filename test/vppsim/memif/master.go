package memif

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// masterHandshakeTimeout bounds HELLO..INIT, before the interface (and its own
// HandshakeTimeout) is known.
const masterHandshakeTimeout = 5 * time.Second

// Socket is a master's listening control socket; several master interfaces share it,
// told apart by the id in the slave's INIT.
type Socket struct {
	path string
	log  *slog.Logger
	ln   *net.UnixListener

	mu     sync.Mutex
	ifaces map[uint32]*Interface
	conns  map[*net.UnixConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen opens a master socket at path (a filesystem path, or "@name" for an abstract
// socket). A stale socket file nobody listens on is replaced.
func Listen(path string, logger *slog.Logger) (*Socket, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if path == "" {
		return nil, errors.New("memif socket: empty path")
	}
	addr := &net.UnixAddr{Name: path, Net: "unixpacket"}
	ln, err := net.ListenUnix("unixpacket", addr)
	if err != nil && errors.Is(err, unix.EADDRINUSE) && path[0] != '@' {
		// Only a socket whose listener is gone is replaced: a live one
		// (another master, VPP's api.sock, docker.sock) stays untouched.
		if rerr := sockfile.RemoveIfStale(path); rerr != nil {
			return nil, fmt.Errorf("memif socket %s: listen: %w", path, rerr)
		}
		ln, err = net.ListenUnix("unixpacket", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("memif socket %s: listen: %w", path, err)
	}
	s := &Socket{
		path: path, ln: ln, log: logger.With("memif_socket", path),
		ifaces: map[uint32]*Interface{}, conns: map[*net.UnixConn]struct{}{},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop()
	}()
	s.log.Info("memif socket listening")
	return s, nil
}

// Path is the socket's address.
func (s *Socket) Path() string { return s.path }

// Close stops listening and drops every connection on the socket (their links go down).
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for uc := range s.conns {
		_ = uc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.log.Info("memif socket closed")
	if err != nil {
		return fmt.Errorf("memif socket %s: close: %w", s.path, err)
	}
	return nil
}

func (s *Socket) register(i *Interface) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memif socket %s: closed", s.path)
	}
	if _, dup := s.ifaces[i.cfg.ID]; dup {
		return fmt.Errorf("memif socket %s: id %d already in use", s.path, i.cfg.ID)
	}
	s.ifaces[i.cfg.ID] = i
	return nil
}

func (s *Socket) unregister(i *Interface) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ifaces[i.cfg.ID] == i {
		delete(s.ifaces, i.cfg.ID)
	}
}

func (s *Socket) acceptLoop() {
	for {
		uc, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			s.log.Warn("memif accept failed", "err", err)
			time.Sleep(100 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			uc.Close()
			return
		}
		s.conns[uc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(uc)
			s.mu.Lock()
			delete(s.conns, uc)
			s.mu.Unlock()
		}()
	}
}

// serve runs one slave connection: HELLO, INIT to find the interface, then hands over.
func (s *Socket) serve(uc *net.UnixConn) {
	cc := newCtrl(uc)
	reject := func(reason string) {
		s.log.Warn("memif connection refused", "reason", reason)
		cc.sendDisconnect(reason)
		cc.close()
	}
	_ = uc.SetDeadline(time.Now().Add(masterHandshakeTimeout))
	hello := message{typ: msgHello, hello: helloMsg{
		name: "vppmesh", minVersion: Version, maxVersion: Version,
		maxRegion: maxRegions - 1, maxM2S: maxQueues - 1, maxS2M: maxQueues - 1, maxLog2RingSize: maxLog2Ring,
	}}
	if err := cc.send(&hello, -1); err != nil {
		s.log.Warn("memif hello failed", "err", err)
		uc.Close()
		return
	}
	m, fd, err := cc.recv()
	if err != nil {
		reject(err.Error())
		return
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	if m.typ != msgInit {
		reject(fmt.Sprintf("expected INIT, got %v", m.typ))
		return
	}
	if m.init.version != Version {
		reject(fmt.Sprintf("incompatible memif version %#x", m.init.version))
		return
	}
	s.mu.Lock()
	i := s.ifaces[m.init.id]
	s.mu.Unlock()
	if i == nil {
		reject(fmt.Sprintf("ID %d not found", m.init.id))
		return
	}
	conn := newConnection(cc)
	if err := i.claim(conn); err != nil {
		reject(err.Error())
		return
	}
	i.masterSession(conn, m.init)
}

func (i *Interface) masterSession(conn *connection, in initMsg) {
	_ = conn.cc.uc.SetDeadline(time.Now().Add(i.cfg.HandshakeTimeout))
	if err := i.masterHandshake(conn, in); err != nil {
		conn.fail(err.Error())
		i.release(conn, err.Error())
		return
	}
	_ = conn.cc.uc.SetDeadline(time.Time{})
	i.setUp(conn)
	err := conn.readLoop()
	i.release(conn, conn.downReason(err))
}

type pendingRing struct {
	r     *ring
	fdIdx int // index into conn.ringFDs
	set   bool
}

func (i *Interface) masterHandshake(conn *connection, in initMsg) error {
	switch {
	case in.mode == ModePuntInject:
		return errors.New("punt/inject mode not supported")
	case in.mode != i.cfg.Mode:
		return fmt.Errorf("mode mismatch: slave %v, master %v", in.mode, i.cfg.Mode)
	}
	if i.cfg.Secret != "" {
		var want [secretLen]byte
		copy(want[:], i.cfg.Secret)
		if in.secret[0] == 0 {
			return errors.New("secret required")
		}
		if subtle.ConstantTimeCompare(want[:], in.secret[:]) != 1 {
			return errors.New("incorrect secret")
		}
	}
	conn.peerName = in.name
	ack := message{typ: msgAck}
	if err := conn.cc.send(&ack, -1); err != nil {
		return err
	}
	// Like VPP, the slave decides the queue counts, up to what HELLO announced.
	s2m := make([]pendingRing, maxQueues)
	m2s := make([]pendingRing, maxQueues)
	for {
		m, fd, err := conn.cc.recv()
		if err != nil {
			return err
		}
		switch m.typ {
		case msgAddRegion:
			if fd < 0 {
				return errors.New("ADD_REGION: missing region fd")
			}
			if int(m.addRegion.index) != len(conn.regions) || len(conn.regions) >= maxRegions {
				unix.Close(fd)
				return fmt.Errorf("ADD_REGION: invalid region index %d", m.addRegion.index)
			}
			r, err := mapRegion(fd, m.addRegion.size)
			if err != nil {
				unix.Close(fd)
				return fmt.Errorf("ADD_REGION %d: %w", m.addRegion.index, err)
			}
			conn.regions = append(conn.regions, r)
			conn.mems = append(conn.mems, r.mem)
		case msgAddRing:
			if fd < 0 {
				return errors.New("ADD_RING: missing interrupt fd")
			}
			conn.ringFDs = append(conn.ringFDs, fd)
			ar := m.addRing
			tbl := m2s
			if ar.flags&addRingS2M != 0 {
				tbl = s2m
			}
			if int(ar.index) >= len(tbl) || tbl[ar.index].set {
				return fmt.Errorf("ADD_RING: invalid ring index %d", ar.index)
			}
			if int(ar.region) >= len(conn.mems) {
				return fmt.Errorf("ADD_RING %d: invalid region index %d", ar.index, ar.region)
			}
			r, err := newRing(conn.mems[ar.region], uint64(ar.offset), ar.log2RingSize)
			if err != nil {
				return fmt.Errorf("ADD_RING %d: %w", ar.index, err)
			}
			tbl[ar.index] = pendingRing{r: r, fdIdx: len(conn.ringFDs) - 1, set: true}
		case msgConnect:
			if fd >= 0 {
				unix.Close(fd)
			}
			if err := i.masterQueues(conn, s2m, m2s); err != nil {
				return err
			}
			conn.peerIf = m.ifName
			return conn.cc.send(&message{typ: msgConnected, ifName: i.cfg.Name}, -1)
		case msgDisconnect:
			if fd >= 0 {
				unix.Close(fd)
			}
			return &errPeerDisconnect{reason: m.disconnect.reason}
		default:
			if fd >= 0 {
				unix.Close(fd)
			}
			return fmt.Errorf("unexpected %v during handshake", m.typ)
		}
		if err := conn.cc.send(&ack, -1); err != nil {
			return err
		}
	}
}

// masterQueues checks what the slave announced and builds the queues: S2M rings are
// ours to receive from, M2S rings ours to fill.
func (i *Interface) masterQueues(conn *connection, s2m, m2s []pendingRing) error {
	count := func(t []pendingRing) int {
		n := 0
		for n < len(t) && t[n].set {
			n++
		}
		for _, p := range t[n:] {
			if p.set {
				return -1
			}
		}
		return n
	}
	ns, nm := count(s2m), count(m2s)
	if ns < 1 || nm < 1 {
		return fmt.Errorf("CONNECT: rings missing or not contiguous (%d s2m, %d m2s)", ns, nm)
	}
	build := func(p pendingRing, kind queueKind, idx int) (*Queue, error) {
		if c := p.r.cookie(); c != Cookie {
			return nil, fmt.Errorf("CONNECT: wrong cookie %#x on ring %d", c, idx)
		}
		q, err := newQueue(kind, idx, p.r, conn.mems, conn.ringFDs[p.fdIdx], conn.fail)
		if err != nil {
			return nil, err
		}
		conn.ringFDs[p.fdIdx] = -1
		q.cursor = p.r.tail()
		return q, nil
	}
	for k := 0; k < ns; k++ {
		q, err := build(s2m[k], masterRx, k)
		if err != nil {
			return err
		}
		conn.rx = append(conn.rx, q)
	}
	for k := 0; k < nm; k++ {
		q, err := build(m2s[k], masterTx, k)
		if err != nil {
			return err
		}
		conn.tx = append(conn.tx, q)
	}
	return nil
}
