package vppsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/backoff"
	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// Config describes one vppsim instance.
type Config struct {
	// Socket is the path of the binary API unix socket (VPP's default /run/vpp/api.sock).
	Socket string
	// SocketMode is the permission of the socket file; 0660 when zero.
	SocketMode os.FileMode
	// Logger receives one structured line per event; slog.Default() when nil.
	Logger *slog.Logger
	// Version is reported by show_version and "show version"; a 25.10 string when empty.
	Version string
	// Drivers is asked for a packet driver each time an interface is created. When nil,
	// memif and vhost-user interfaces get vppsim's own drivers (real sockets, real
	// packets); NoDrivers turns packet I/O off.
	Drivers DriverFactory
	// StatsSocket is where the stats segment is served (VPP: /run/vpp/stats.sock);
	// empty serves none.
	StatsSocket string
	// WriteTimeout bounds how long a client may leave replies unread before it is
	// disconnected; 10 s when zero.
	WriteTimeout time.Duration
}

// Sim is a running VPP stand-in. All methods are safe for concurrent use.
type Sim struct {
	cfg      Config
	log      *slog.Logger
	table    *msgTable
	handlers map[string]handlerFunc
	faults   *faults

	mu         sync.Mutex // guards the fields below
	ln         net.Listener
	clients    map[uint32]*client
	nextClient uint32
	closed     bool
	connWG     sync.WaitGroup // reader/writer goroutines of the current incarnation
	acceptDone chan struct{}

	// stMu serialises API handlers, as VPP's main thread does.
	stMu sync.Mutex
	st   *state

	dp        *dataplane
	drivers   DriverFactory
	clock     *coarseClock
	statsKick chan struct{}
	hkStop    func() // stops housekeeping and closes the stats segment
	// macAgeUnit is one "minute" of a bridge domain's mac_age; ageScan is how often the
	// MAC tables are scanned. Tests shorten both.
	macAgeUnit, ageScan atomic.Int64 // nanoseconds
}

// Start creates the socket (and its parent directory) and serves clients until Close.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.Socket == "" {
		cfg.Socket = "/run/vpp/api.sock"
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = 0o660
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "25.10-release~vppsim"
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	table, err := newMsgTable()
	if err != nil {
		return nil, fmt.Errorf("vppsim: build message table: %w", err)
	}
	s := &Sim{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "vppsim"),
		table:    table,
		handlers: newHandlers(),
		faults:   newFaults(),
		clients:  map[uint32]*client{},

		clock:     &coarseClock{},
		statsKick: make(chan struct{}, 1),
	}
	s.macAgeUnit.Store(int64(time.Minute))
	s.ageScan.Store(int64(time.Second))
	s.dp = newDataplane(s.log)
	s.drivers = cfg.Drivers
	if s.drivers == nil {
		s.drivers = s.dp.attach
	}
	s.st = s.newState()
	if err := s.startHousekeeping(); err != nil {
		return nil, fmt.Errorf("vppsim: stats segment %s: %w", cfg.StatsSocket, err)
	}
	if err := s.listen(ctx); err != nil {
		s.hkStop()
		return nil, err
	}
	s.log.Info("vppsim started", "socket", cfg.Socket, "messages", len(table.byID)-1)
	return s, nil
}

func (s *Sim) newState() *state {
	st := newState(s.emitLinkEvent, s.drivers, s.log)
	st.clock = s.clock
	return st
}

// SocketPath is where clients connect.
func (s *Sim) SocketPath() string { return s.cfg.Socket }

func (s *Sim) listen(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Socket), 0o755); err != nil {
		return fmt.Errorf("vppsim: create socket dir for %s: %w", s.cfg.Socket, err)
	}
	// A stale socket from a crashed run would make Listen fail, as it does
	// for VPP; a live one (a running VPP or vppsim) is left alone.
	if err := sockfile.RemoveIfStale(s.cfg.Socket); err != nil {
		return fmt.Errorf("vppsim: %w", err)
	}
	ln, err := sockfile.Listen(ctx, "unix", s.cfg.Socket, s.cfg.SocketMode)
	if err != nil {
		return fmt.Errorf("vppsim: listen on %s: %w", s.cfg.Socket, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.ln = ln
	s.acceptDone = done
	s.mu.Unlock()
	go s.acceptLoop(ln, done)
	return nil
}

func (s *Sim) acceptLoop(ln net.Listener, done chan struct{}) {
	defer close(done)
	var bo backoff.Accept
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ENFILE, ECONNABORTED...: wait and accept again; a
			// listener that gives up leaves VPP's socket dead for good.
			d := bo.Next()
			s.log.Error("accept failed; retrying", "socket", s.cfg.Socket, "err", err, "retry_in", d)
			time.Sleep(d)
			continue
		}
		bo.Reset()
		s.mu.Lock()
		if s.closed || s.ln != ln {
			s.mu.Unlock()
			conn.Close()
			return
		}
		// Client indexes keep growing across restarts, so a stale index is never reused.
		s.nextClient++
		c := newClient(s, s.nextClient, conn)
		s.clients[c.index] = c
		s.connWG.Add(2)
		s.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// shutdown stops listening and drops every client; it returns after their goroutines end.
func (s *Sim) shutdown() {
	s.mu.Lock()
	ln, done := s.ln, s.acceptDone
	s.ln = nil
	clients := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
		<-done
	}
	for _, c := range clients {
		c.close()
	}
	// Hung handlers wake up through their closed client, so the wait below ends.
	s.connWG.Wait()
	os.Remove(s.cfg.Socket)
}

// Restart behaves like a VPP crash and restart: every client is dropped, all state
// (interfaces, L2, memif sockets) is lost, and the socket is created again. Call counts
// and fault settings survive; a hang is cleared.
func (s *Sim) Restart(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("vppsim: restart after close")
	}
	s.mu.Unlock()
	s.log.Info("vppsim restarting", "socket", s.cfg.Socket)
	s.shutdown()
	s.faults.resume()
	s.stMu.Lock()
	s.st.closeAll()
	s.st = s.newState()
	s.stMu.Unlock()
	// A restarted VPP starts with a fresh stats segment: counters are lost.
	s.hkStop()
	if err := s.startHousekeeping(); err != nil {
		return fmt.Errorf("vppsim: restart stats segment %s: %w", s.cfg.StatsSocket, err)
	}
	return s.listen(ctx)
}

// Close stops the simulator and removes its socket.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.shutdown()
	s.stMu.Lock()
	s.st.closeAll()
	s.stMu.Unlock()
	s.hkStop()
	// Driver goroutines may have been waiting for the API lock to report a link change.
	s.dp.wg.Wait()
	s.log.Info("vppsim stopped", "socket", s.cfg.Socket)
	return nil
}

// ClientCount reports how many API clients are connected.
func (s *Sim) ClientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Sim) removeClient(c *client) {
	s.mu.Lock()
	if s.clients[c.index] == c {
		delete(s.clients, c.index)
	}
	s.mu.Unlock()
}

// subscribers returns the clients that asked for interface events.
func (s *Sim) subscribers() []*client {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*client
	for _, c := range s.clients {
		if c.wantEvents.Load() {
			out = append(out, c)
		}
	}
	return out
}

// isClosedErr tells a normal disconnect from a protocol problem worth a warning.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
