package vppsim

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/codec"
)

// outQueueLen bounds the replies waiting for one client; its own requests wait while it
// is full (back-pressure). A client that reads nothing at all is dropped by the write
// deadline (Config.WriteTimeout), not by a full queue.
const outQueueLen = 1024

// maxEventBacklog bounds the events held for one client behind a full queue. VPP's
// socket transport queues events without limit in the client's output vector and never
// drops a client for them; vppsim queues too, but past this many (about 15 MiB) it drops
// further events and counts them rather than growing without end.
const maxEventBacklog = 1 << 18

// client is one API connection, registered or not yet.
type client struct {
	sim   *Sim
	index uint32
	conn  net.Conn
	log   *slog.Logger

	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once

	registered bool   // reader goroutine only
	name       string // reader goroutine only
	wantEvents atomic.Bool
	eventPID   atomic.Uint32

	evMu      sync.Mutex
	evBacklog [][]byte // encoded events waiting for room in out, oldest first
	evDropped int      // events dropped since the backlog was last drained
	evKick    chan struct{}
}

func newClient(s *Sim, index uint32, conn net.Conn) *client {
	return &client{
		sim:    s,
		index:  index,
		conn:   conn,
		log:    s.log.With("client", index),
		out:    make(chan []byte, outQueueLen),
		done:   make(chan struct{}),
		evKick: make(chan struct{}, 1),
	}
}

func (c *client) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.conn.Close()
		c.sim.removeClient(c)
	})
}

func (c *client) readLoop() {
	defer c.sim.connWG.Done()
	defer c.close()
	defer func() {
		// Last resort: a bug must cost one client its connection, not the simulator.
		if r := recover(); r != nil {
			c.log.Error("client handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	r := bufio.NewReaderSize(c.conn, 64<<10)
	var hdr [frameHeaderLen]byte
	buf := make([]byte, 4096)
	for {
		msg, err := readFrame(r, &hdr, buf)
		if err != nil {
			if isClosedErr(err) {
				c.log.Debug("client disconnected", "name", c.name)
			} else {
				c.log.Warn("dropping client after bad frame", "name", c.name, "err", err)
			}
			return
		}
		if cap(msg) > cap(buf) && cap(msg) <= 64<<10 {
			buf = msg[:0]
		}
		if err := c.handle(msg); err != nil {
			if !errors.Is(err, errClientGone) {
				c.log.Warn("dropping client", "name", c.name, "err", err)
			}
			return
		}
	}
}

func (c *client) writeLoop() {
	defer c.sim.connWG.Done()
	w := bufio.NewWriterSize(c.conn, 64<<10)
	for {
		select {
		case <-c.done:
			return
		case frame := <-c.out:
			if err := c.writeBatch(w, frame); err != nil {
				if !isClosedErr(err) {
					c.log.Warn("write to client failed", "err", err)
				}
				c.close()
				return
			}
		case <-c.evKick:
			if err := c.writeBatch(w, nil); err != nil {
				if !isClosedErr(err) {
					c.log.Warn("write to client failed", "err", err)
				}
				c.close()
				return
			}
		}
	}
}

// writeBatch writes frame (if any), whatever else is already queued and then the event
// backlog with one flush, so a dump of many details costs few syscalls. Queued replies go
// first: a reply is queued before the events its request caused.
func (c *client) writeBatch(w *bufio.Writer, frame []byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.sim.cfg.WriteTimeout)); err != nil {
		return err
	}
	if frame != nil {
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	for {
		select {
		case more := <-c.out:
			if _, err := w.Write(more); err != nil {
				return err
			}
			continue
		default:
		}
		evs := c.takeEventBacklog()
		if len(evs) == 0 {
			return w.Flush()
		}
		for _, ev := range evs {
			if _, err := w.Write(ev); err != nil {
				return err
			}
		}
	}
}

// takeEventBacklog hands the writer every event waiting behind a full queue.
func (c *client) takeEventBacklog() [][]byte {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	evs := c.evBacklog
	c.evBacklog = nil
	if len(evs) > 0 && c.evDropped > 0 {
		c.log.Warn("interface events dropped", "count", c.evDropped, "backlog_limit", maxEventBacklog)
		c.evDropped = 0
	}
	return evs
}

var errClientGone = errors.New("client gone")

// send queues one encoded message, waiting while the queue is full (the client is slow
// reading our replies to its own requests; it is back-pressure, not abuse).
func (c *client) send(msg []byte) error {
	select {
	case c.out <- appendFrame(make([]byte, 0, frameHeaderLen+len(msg)), msg):
		return nil
	case <-c.done:
		return errClientGone
	}
}

// sendEvent queues an event without waiting, so that a subscriber busy with a long dump
// of its own never stalls the API for others. When the queue is full (typically of that
// client's own dump details) the event waits in the backlog, as VPP keeps it in the
// client's output vector; the client is not disconnected for it.
func (c *client) sendEvent(msg []byte) {
	frame := appendFrame(make([]byte, 0, frameHeaderLen+len(msg)), msg)
	c.evMu.Lock()
	if len(c.evBacklog) == 0 {
		// Only while nothing is held back, or events would overtake each other.
		select {
		case c.out <- frame:
			c.evMu.Unlock()
			return
		default:
		}
	}
	if len(c.evBacklog) >= maxEventBacklog {
		if c.evDropped == 0 {
			c.log.Warn("interface event backlog full, dropping events", "backlog_limit", maxEventBacklog)
		}
		c.evDropped++
		c.evMu.Unlock()
		return
	}
	c.evBacklog = append(c.evBacklog, frame)
	c.evMu.Unlock()
	select {
	case c.evKick <- struct{}{}:
	default:
	}
}

// reply encodes and queues messages answering the request with the given context.
func (c *client) reply(context uint32, msgs ...api.Message) error {
	for _, m := range msgs {
		data, err := c.sim.table.encode(m, c.index, context)
		if err != nil {
			return err
		}
		if err := c.send(data); err != nil {
			return err
		}
	}
	return nil
}

// handle processes one message from the client. A returned error closes the connection.
func (c *client) handle(msg []byte) error {
	hdr, err := parseRequestHeader(msg)
	if err != nil {
		return err
	}
	s := c.sim
	e := s.table.lookupID(hdr.msgID)
	if e == nil {
		return fmt.Errorf("unknown message id %d", hdr.msgID)
	}
	if !c.registered && e.name != "sockclnt_create" {
		return fmt.Errorf("message %s before sockclnt_create", e.name)
	}
	s.faults.count(e.name)
	if err := s.faults.wait(c.done, e.name); err != nil {
		return err
	}
	if retval, ok := s.faults.takeFailure(e.name); ok {
		c.log.Info("injected failure", "msg", e.name, "retval", retval)
		if e.reply == nil {
			return nil // a failed dump returns no details
		}
		rep := e.reply.new()
		setRetval(rep, retval)
		return c.reply(hdr.context, rep)
	}
	h := s.handlers[e.name]
	if h == nil {
		if e.reply != nil {
			rep := e.reply.new()
			if setRetval(rep, errUnimplemented) {
				c.log.Debug("unimplemented message", "msg", e.name)
				return c.reply(hdr.context, rep)
			}
		}
		// A dump we do not implement has no details: the control_ping reply that follows
		// ends it empty. Replies and events sent to us are ignored, as VPP does.
		c.log.Debug("message without handler ignored", "msg", e.name)
		return nil
	}
	req := e.new()
	// Cap the slice at its length: govpp's decoder slices past len when cap allows, and
	// a truncated message would otherwise be completed with bytes of an earlier one.
	if err := codec.DefaultCodec.DecodeMsg(msg[:len(msg):len(msg)], req); err != nil {
		if e.reply != nil {
			rep := e.reply.new()
			if setRetval(rep, errInvalidValue) {
				c.log.Warn("undecodable request", "msg", e.name, "len", len(msg), "err", err)
				return c.reply(hdr.context, rep)
			}
		}
		return fmt.Errorf("decode %s (%d bytes): %w", e.name, len(msg), err)
	}
	return h(c, hdr, req)
}

// handlerFunc serves one request type; it replies through c.
type handlerFunc func(c *client, hdr requestHeader, req api.Message) error

// newHandlers maps message names to their implementations; the map is read-only once
// built.
func newHandlers() map[string]handlerFunc {
	h := map[string]handlerFunc{
		"sockclnt_create":         handleSockclntCreate,
		"sockclnt_delete":         handleSockclntDelete,
		"control_ping":            handleControlPing,
		"memclnt_keepalive_reply": func(*client, requestHeader, api.Message) error { return nil },
	}
	registerAPIHandlers(h)
	return h
}

func handleSockclntCreate(c *client, hdr requestHeader, req api.Message) error {
	m := req.(*memclnt.SockclntCreate)
	c.registered = true
	c.name = m.Name
	c.log.Info("client registered", "name", m.Name)
	tbl := c.sim.table.wireTable()
	return c.reply(hdr.context, &memclnt.SockclntCreateReply{
		Index:        c.index,
		Count:        uint16(len(tbl)),
		MessageTable: tbl,
	})
}

func handleSockclntDelete(c *client, hdr requestHeader, _ api.Message) error {
	c.log.Info("client unregistered", "name", c.name)
	if err := c.reply(hdr.context, &memclnt.SockclntDeleteReply{}); err != nil {
		return err
	}
	// Let the writer flush the reply; the client closes its end right after reading it.
	c.wantEvents.Store(false)
	return nil
}

func handleControlPing(c *client, hdr requestHeader, _ api.Message) error {
	return c.reply(hdr.context, &memclnt.ControlPingReply{VpePID: vpePID})
}

// vpePID is what VPP reports as its process id in control_ping_reply.
const vpePID = 4242
