package govppmux

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
)

// conn is the stable api.Connection handed to descriptors: it resolves the
// current session per call, so nobody holds a connection that died with a
// VPP restart. It also counts and logs every request.
type conn struct{ m *Mux }

var _ api.Connection = (*conn)(nil)

func (c *conn) session(name string) (*core.Connection, error) {
	cur := c.m.current()
	if cur == nil {
		return nil, fmt.Errorf("%s: %w", name, ErrNotConnected)
	}
	return cur, nil
}

// withTimeout bounds a call by CallTimeout (unless ctx has a deadline) and
// by the session it runs on: when the session ends (VPP gone, Close) the
// call fails at once.
func (c *conn) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.m.opts.CallTimeout)
	}
	sess := c.m.currentCtx()
	if sess == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(sess, cancel)
	return ctx, func() { stop(); cancel() }
}

func (c *conn) Invoke(ctx context.Context, req, reply api.Message) error {
	name := req.GetMessageName()
	cur, err := c.session(name)
	if err != nil {
		return err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.m.counts.add(name)
	start := time.Now()
	err = cur.Invoke(ctx, req, reply)
	if err == nil || isVPPReply(err) {
		c.m.replied()
	}
	c.m.log.Debug("vpp call", "msg", name, "duration", time.Since(start), "error", err)
	return err
}

func (c *conn) NewStream(ctx context.Context, options ...api.StreamOption) (api.Stream, error) {
	cur, err := c.session("stream")
	if err != nil {
		return nil, err
	}
	opts := append([]api.StreamOption{core.WithReplyTimeout(c.m.opts.CallTimeout)}, options...)
	// The stream ends with its session too (see withTimeout).
	sctx, cancel := context.WithCancel(ctx)
	stop := func() bool { return false }
	if sess := c.m.currentCtx(); sess != nil {
		stop = context.AfterFunc(sess, cancel)
	}
	s, err := cur.NewStream(sctx, opts...)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	return &stream{Stream: s, m: c.m, release: func() { stop(); cancel() }}, nil
}

// WatchEvent subscribes with buffers sized by Options.EventBuffer: govpp's
// default of 100 drops notifications (logging each) when thousands of
// interfaces change at once, and a dropped state is never published.
func (c *conn) WatchEvent(ctx context.Context, event api.Message) (api.Watcher, error) {
	cur, err := c.session(event.GetMessageName())
	if err != nil {
		return nil, err
	}
	n := c.m.opts.EventBuffer
	return cur.WatchEventWithOptions(ctx, event, core.WithNotifBufferSize(n), core.WithEventBufferSize(n))
}

// isVPPReply tells whether err came with a reply from VPP (a non-zero
// retval), which proves VPP alive as much as a success does.
func isVPPReply(err error) bool {
	var e api.VPPApiError
	return errors.As(err, &e)
}

// stream counts requests sent on a stream (dumps), except the control_ping
// that generated dump clients append as a terminator.
type stream struct {
	api.Stream
	m       *Mux
	name    string
	start   time.Time
	release func()
}

func (s *stream) SendMsg(msg api.Message) error {
	name := msg.GetMessageName()
	if name != "control_ping" || s.name == "" {
		s.m.counts.add(name)
	}
	if s.name == "" {
		s.name, s.start = name, time.Now()
	}
	return s.Stream.SendMsg(msg)
}

func (s *stream) RecvMsg() (api.Message, error) {
	msg, err := s.Stream.RecvMsg()
	if err == nil {
		s.m.replied()
	}
	return msg, err
}

func (s *stream) Close() error {
	if s.name != "" {
		s.m.log.Debug("vpp call", "msg", s.name, "duration", time.Since(s.start))
	}
	err := s.Stream.Close()
	if s.release != nil {
		s.release()
	}
	return err
}

type callCounter struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *callCounter) add(name string) {
	c.mu.Lock()
	c.m[name]++
	c.mu.Unlock()
}

func (c *callCounter) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
