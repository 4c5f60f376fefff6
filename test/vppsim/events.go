package vppsim

import (
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
)

// serve runs fn under the API lock, replies with what it returns, then tells
// subscribers about interface changes it made (VPP sends the reply before the event).
func (c *client) serve(hdr requestHeader, fn func(st *state) []api.Message) error {
	s := c.sim
	msgs, evs, changed := s.locked(fn)
	if changed {
		s.kickStats()
	}
	err := c.reply(hdr.context, msgs...)
	s.publish(evs)
	return err
}

// locked runs fn under the API lock. The unlock is deferred: a handler that
// panics (recovered in readLoop, costing that client its connection) must
// not leave the lock held and hang every other client.
func (s *Sim) locked(fn func(st *state) []api.Message) (msgs []api.Message, evs []ifEvent, changed bool) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	defer func() {
		// Events and the change flag of a half-done handler are dropped
		// with it, so they do not leak into the next request's reply.
		if r := recover(); r != nil {
			s.st.takeEvents()
			s.st.ifChanged = false
			panic(r)
		}
	}()
	msgs = fn(s.st)
	evs = s.st.takeEvents()
	changed = s.st.ifChanged
	s.st.ifChanged = false
	return msgs, evs, changed
}

// on registers a typed handler for the request type T.
func on[T api.Message](h map[string]handlerFunc, fn func(st *state, c *client, m T) []api.Message) {
	var zero T
	h[zero.GetMessageName()] = func(c *client, hdr requestHeader, req api.Message) error {
		m, ok := req.(T)
		if !ok {
			return nil
		}
		return c.serve(hdr, func(st *state) []api.Message { return fn(st, c, m) })
	}
}

// publish sends sw_interface_event to every subscribed client.
func (s *Sim) publish(evs []ifEvent) {
	if len(evs) == 0 {
		return
	}
	subs := s.subscribers()
	for _, ev := range evs {
		s.log.Debug("interface event", "sw_if_index", ev.idx, "flags", ev.flags, "deleted", ev.deleted)
		for _, c := range subs {
			msg := &interfaces.SwInterfaceEvent{
				PID:       c.eventPID.Load(),
				SwIfIndex: interface_types.InterfaceIndex(ev.idx),
				Flags:     interface_types.IfStatusFlags(ev.flags),
				Deleted:   ev.deleted,
			}
			data, err := s.table.encode(msg, c.index, 0)
			if err != nil {
				s.log.Error("encode event", "msg", "sw_interface_event", "err", err)
				return
			}
			c.sendEvent(data)
		}
	}
}

// emitLinkEvent records a driver's link change. Drivers must not call it from inside
// their DriverFactory (the API lock is held there).
func (s *Sim) emitLinkEvent(p *Port, up bool) {
	evs := func() []ifEvent {
		s.stMu.Lock()
		defer s.stMu.Unlock()
		if ifc := s.st.get(p.swIfIndex); ifc != nil && ifc.port == p {
			s.st.setLink(ifc, up)
		}
		return s.st.takeEvents()
	}()
	s.publish(evs)
}
