package govppmux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/core"
)

// ErrNotConnected is returned by calls made while VPP is not connected.
var ErrNotConnected = errors.New("VPP is not connected")

// EventKind tells what happened to the connection.
type EventKind int

const (
	// EventConnected: a (new) VPP session is up; a restarted VPP has lost
	// all configuration, so consumers resync downstream.
	EventConnected EventKind = iota
	// EventDisconnected: the session is gone; calls fail until reconnect.
	EventDisconnected
)

func (k EventKind) String() string {
	if k == EventConnected {
		return "connected"
	}
	return "disconnected"
}

// Event is one change of the connection state.
type Event struct {
	Kind EventKind
	Time time.Time
	// Err is why the session ended (EventDisconnected), if known.
	Err error
	// Incompatible lists messages VPP does not know (name_crc) at connect.
	Incompatible []string
}

// Mux keeps one VPP connection alive and hands out a Connection that stays
// valid across reconnects.
type Mux struct {
	opts  Options
	log   *slog.Logger
	proxy *conn

	mu  sync.RWMutex
	cur *core.Connection // nil while disconnected
	// curCtx ends with the current session: calls in flight on a session
	// that is gone fail at once instead of waiting out CallTimeout (govpp
	// leaves them waiting for replies that will never come).
	curCtx    context.Context
	msgs      []api.Message
	subs      []chan Event
	compatErr error
	cancel    context.CancelFunc
	done      chan struct{}

	counts callCounter
	// lastReply is when any reply last arrived from VPP (unix nanoseconds):
	// a reply is proof of life, so the health check does not declare VPP
	// gone while it answers other calls (a ping queued behind thousands of
	// requests can time out on a perfectly healthy VPP).
	lastReply atomic.Int64
}

// New returns a Mux; nothing happens until Start.
func New(opts Options) *Mux {
	relaxGovppHealthCheck.Do(func() {
		// govpp runs a health probe of its own on every async connection
		// and drops the session after 3 replies slower than 250 ms, which
		// a busy VPP easily is (an API call behind a large dump). The
		// mux's watch decides when VPP is gone (and tells busy from hung);
		// govpp's probe stays only as a backstop for a silent socket.
		// These are package variables, set once before any connection.
		core.HealthCheckReplyTimeout = govppProbeTimeout
	})
	opts = opts.withDefaults()
	m := &Mux{opts: opts, log: opts.Logger.With("component", "govppmux"), msgs: append([]api.Message(nil), opts.Messages...)}
	m.counts.m = make(map[string]uint64)
	m.proxy = &conn{m: m}
	return m
}

// govppProbeTimeout replaces govpp's 250 ms health-probe timeout: as long as
// the mux's own longest probe timeout by default (4 × 1 s).
const govppProbeTimeout = 4 * time.Second

var relaxGovppHealthCheck sync.Once

// AddMessages adds messages to the compatibility check of every later
// connect (and checks them now if connected, logging what is missing).
func (m *Mux) AddMessages(msgs ...api.Message) {
	m.mu.Lock()
	m.msgs = append(m.msgs, msgs...)
	cur := m.cur
	m.mu.Unlock()
	if cur != nil {
		if bad := m.checkCompat(cur, msgs); len(bad) > 0 {
			m.log.Error("VPP is missing messages the agent uses", "messages", bad)
		}
	}
}

// Start connects in the background and keeps reconnecting until Close or
// until ctx ends. It returns at once; watch Events or Connected.
func (m *Mux) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		return errors.New("govppmux: already started")
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go m.run(ctx)
	return nil
}

// Close stops reconnecting and disconnects; subscribers' channels close.
func (m *Mux) Close() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	m.mu.Lock()
	for _, s := range m.subs {
		close(s)
	}
	m.subs = nil
	m.mu.Unlock()
}

// Conn returns a Connection that always talks to the current VPP session
// (calls fail with ErrNotConnected between sessions); safe to keep.
func (m *Mux) Conn() api.Connection { return m.proxy }

// Connected reports whether a VPP session is up.
func (m *Mux) Connected() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cur != nil
}

// Compatibility returns the last connect's compatibility error naming every
// message VPP lacks, or nil.
func (m *Mux) Compatibility() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.compatErr
}

// Events returns a new channel that receives every later connection event.
// Each caller gets its own channel; a slow reader loses events (logged)
// rather than stalling the connection. It closes on Close.
func (m *Mux) Events() <-chan Event {
	ch := make(chan Event, 64)
	m.mu.Lock()
	m.subs = append(m.subs, ch)
	m.mu.Unlock()
	return ch
}

// Calls returns how many requests were sent to VPP per message name.
func (m *Mux) Calls() map[string]uint64 { return m.counts.snapshot() }

func (m *Mux) replied() { m.lastReply.Store(time.Now().UnixNano()) }

// repliedSince tells whether any reply arrived from VPP at or after t.
func (m *Mux) repliedSince(t time.Time) bool { return m.lastReply.Load() >= t.UnixNano() }

// currentCtx is the context of the current session (nil while disconnected).
func (m *Mux) currentCtx() context.Context {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.curCtx
}

func (m *Mux) current() *core.Connection {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cur
}

func (m *Mux) emit(ev Event) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.subs {
		select {
		case s <- ev:
		default:
			m.log.Warn("connection event dropped: subscriber is not reading", "event", ev.Kind.String())
		}
	}
}

// run is the reconnect loop. Each round is one govpp AsyncConnect with a
// single attempt; rounds repeat with exponential backoff forever, which
// govpp's own bounded retry cannot do.
func (m *Mux) run(ctx context.Context) {
	defer close(m.done)
	backoff := m.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		up, err := m.session(ctx, attempt)
		if ctx.Err() != nil {
			return
		}
		if up {
			backoff = m.opts.ReconnectMin
			attempt = 0
		} else {
			m.log.Debug("VPP connect attempt failed", "socket", m.opts.Socket, "attempt", attempt, "retry_in", backoff, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if !up {
			backoff = min(backoff*2, m.opts.ReconnectMax)
		}
	}
}

// session runs one connection from connect to loss; up tells whether it
// got connected at all.
func (m *Mux) session(ctx context.Context, attempt int) (up bool, err error) {
	sc := socketclient.NewVppClient(m.opts.Socket)
	sc.SetClientName("vppmesh-agent")
	c, events, err := core.AsyncConnect(sc, 1, m.opts.ReconnectMin)
	if err != nil {
		return false, fmt.Errorf("connect %s: %w", m.opts.Socket, err)
	}
	select {
	case <-ctx.Done():
		// govpp may sit in WaitReady (up to 3 s) for the socket file to
		// appear; let it finish on its own instead of holding up Close.
		go c.Disconnect()
		return false, ctx.Err()
	case ev := <-events:
		if ev.State != core.Connected {
			c.Disconnect()
			return false, fmt.Errorf("connect %s: %s: %w", m.opts.Socket, ev.State, ev.Error)
		}
	}
	defer c.Disconnect()

	m.mu.RLock()
	msgs := append([]api.Message(nil), m.msgs...)
	m.mu.RUnlock()
	bad := m.checkCompat(c, msgs)
	var cerr error
	if len(bad) > 0 {
		cerr = fmt.Errorf("VPP lacks %d message(s) the agent uses: %v", len(bad), bad)
		m.log.Error("VPP is missing messages the agent uses", "socket", m.opts.Socket, "messages", bad)
	}
	sctx, endSession := context.WithCancel(ctx)
	defer endSession()
	m.mu.Lock()
	m.cur, m.curCtx, m.compatErr = c, sctx, cerr
	m.mu.Unlock()
	m.log.Info("VPP connected", "socket", m.opts.Socket, "attempt", attempt)
	m.emit(Event{Kind: EventConnected, Time: time.Now(), Incompatible: bad})

	lost := m.watch(ctx, c, events)

	m.mu.Lock()
	m.cur, m.curCtx = nil, nil
	m.mu.Unlock()
	endSession()
	if ctx.Err() != nil {
		return true, nil
	}
	m.log.Warn("VPP disconnected", "socket", m.opts.Socket, "error", lost)
	m.emit(Event{Kind: EventDisconnected, Time: time.Now(), Err: lost})
	return true, nil
}

// watch health-checks a live session with control_ping and returns why it
// ended: govpp reporting the socket gone, or too many failed probes with no
// other reply from VPP in the meantime. A probe that times out while other
// replies flow only means VPP is busy: it does not count as a failure, and
// the next probe waits longer (up to HealthTimeoutMax), because declaring
// a busy VPP gone would cancel every in-flight call, including creates VPP
// has already carried out.
func (m *Mux) watch(ctx context.Context, c *core.Connection, events chan core.ConnectionEvent) error {
	tick := time.NewTicker(m.opts.HealthInterval)
	defer tick.Stop()
	ping := memclnt.NewServiceClient(c)
	failed := 0
	timeout := m.opts.HealthTimeout
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			if ev.State != core.Connected {
				return fmt.Errorf("govpp reports %s: %v", ev.State, ev.Error)
			}
		case <-tick.C:
			start := time.Now()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			_, err := ping.ControlPing(pctx, &memclnt.ControlPing{})
			cancel()
			if err == nil {
				m.replied()
				failed = 0
				timeout = m.opts.HealthTimeout
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if m.repliedSince(start) {
				failed = 0
				timeout = min(2*timeout, m.opts.HealthTimeoutMax)
				m.log.Debug("VPP busy: health probe timed out while other replies arrived", "msg", "control_ping", "next_timeout", timeout)
				continue
			}
			failed++
			timeout = min(2*timeout, m.opts.HealthTimeoutMax)
			m.log.Warn("VPP health check failed", "msg", "control_ping", "failures", failed, "next_timeout", timeout, "error", err)
			if failed >= m.opts.HealthThreshold {
				return fmt.Errorf("control_ping failed %d times with no reply from VPP: %w", failed, err)
			}
		}
	}
}

// checkCompat returns name_crc of every message VPP does not know.
func (m *Mux) checkCompat(c *core.Connection, msgs []api.Message) []string {
	if len(msgs) == 0 {
		return nil
	}
	ch, err := c.NewAPIChannel()
	if err != nil {
		return []string{fmt.Sprintf("(cannot check: %v)", err)}
	}
	defer ch.Close()
	seen := make(map[string]bool)
	var bad []string
	// One at a time so every missing message is named, whatever the
	// checker does with the first failure.
	for _, msg := range msgs {
		id := msg.GetMessageName() + "_" + msg.GetCrcString()
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := ch.CheckCompatiblity(msg); err != nil {
			bad = append(bad, id)
		}
	}
	sort.Strings(bad)
	return bad
}
