package ifplugin

import (
	"context"
	"fmt"
	"os"
	"strings"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
)

// WatchState registers fn to receive interface oper-state changes of the
// agent's (tagged) interfaces, including a DELETED state when one goes.
// fn runs on the plugin's event goroutine and must not block for long. The
// returned func unregisters it.
func (p *Plugin) WatchState(fn func(*ifmodel.InterfaceState)) (cancel func()) {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	p.watchSeq++
	id := p.watchSeq
	p.watchers[id] = fn
	return func() {
		p.watchMu.Lock()
		delete(p.watchers, id)
		p.watchMu.Unlock()
	}
}

func (p *Plugin) publish(st *ifmodel.InterfaceState) {
	p.watchMu.Lock()
	fns := make([]func(*ifmodel.InterfaceState), 0, len(p.watchers))
	for _, fn := range p.watchers {
		fns = append(fns, fn)
	}
	p.watchMu.Unlock()
	for _, fn := range fns {
		fn(st)
	}
}

// RunStateWatch subscribes to VPP's interface events and publishes each
// change of an agent interface to WatchState callbacks until ctx ends. It
// (re)subscribes at start and at every EventConnected from conn (pass
// govppmux's Events(); nil if the connection never changes), since a new
// VPP session has no subscription; after subscribing it publishes a
// snapshot, so nothing that changed while disconnected is missed.
func (p *Plugin) RunStateWatch(ctx context.Context, conn <-chan govppmux.Event) {
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		// One subscription at a time: the previous one is fully gone
		// before the next starts. govpp v0.13.0's Unsubscribe leaves a
		// stale entry behind when two watchers of one event share a
		// connection, and a later event then panics on a closed channel.
		if stop != nil {
			stop()
			stop = nil
		}
		sub, cancel, err := p.subscribe(ctx)
		if err != nil {
			p.log.Warn("interface events subscription failed; waiting for reconnect", "api", "want_interface_events", "error", err)
		} else {
			stop = cancel
			go p.snapshot(ctx)
		}
		events := conn
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if ev.Kind == govppmux.EventConnected {
					break loop
				}
			case ev, ok := <-sub:
				if !ok {
					sub = nil // session gone; wait for the next connect
					continue
				}
				if e, ok := ev.(*interfaces.SwInterfaceEvent); ok {
					p.onEvent(ctx, e)
				}
			}
		}
	}
}

// subscribe opens a watcher for sw_interface_event and enables events. The
// returned stop ends the subscription and returns once govpp has removed it.
func (p *Plugin) subscribe(ctx context.Context) (<-chan any, func(), error) {
	sctx, cancel := context.WithCancel(ctx)
	w, err := p.conn.WatchEvent(sctx, &interfaces.SwInterfaceEvent{})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("watch sw_interface_event: %w", err)
	}
	if _, err := p.ifs.WantInterfaceEvents(ctx, &interfaces.WantInterfaceEvents{EnableDisable: 1, PID: uint32(os.Getpid())}); err != nil {
		cancel()
		for range w.Events() { // closed once govpp unsubscribed
		}
		return nil, nil, fmt.Errorf("want_interface_events: %w", err)
	}
	out := make(chan any, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for m := range w.Events() {
			select {
			case out <- m:
			case <-sctx.Done():
				w.Close()
				for range w.Events() {
				}
				return
			}
		}
	}()
	stop := func() {
		cancel()
		w.Close()
		<-done
	}
	return out, stop, nil
}

func (p *Plugin) onEvent(ctx context.Context, e *interfaces.SwInterfaceEvent) {
	name, ok := p.NameOf(uint32(e.SwIfIndex))
	if !ok {
		return
	}
	if e.Deleted {
		p.publish(&ifmodel.InterfaceState{Name: name, IfIndex: uint32(e.SwIfIndex),
			AdminStatus: ifmodel.InterfaceState_DELETED, OperStatus: ifmodel.InterfaceState_DELETED, LastChange: nowUnix()})
		return
	}
	st, err := p.stateOf(ctx, e.SwIfIndex)
	if err != nil {
		p.log.Warn("interface state read failed", "name", name, "sw_if_index", uint32(e.SwIfIndex), "error", err)
		return
	}
	if st != nil {
		p.publish(st)
	}
}

// snapshot publishes the state of every agent interface.
func (p *Plugin) snapshot(ctx context.Context) {
	d, err := p.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		p.log.Warn("interface state snapshot failed", "api", "sw_interface_dump", "error", err)
		return
	}
	all, err := recv("sw_interface_dump", d.Recv)
	if err != nil {
		p.log.Warn("interface state snapshot failed", "api", "sw_interface_dump", "error", err)
		return
	}
	for _, det := range all {
		if st := p.toState(det); st != nil {
			p.publish(st)
		}
	}
}

func (p *Plugin) stateOf(ctx context.Context, idx interface_types.InterfaceIndex) (*ifmodel.InterfaceState, error) {
	d, err := p.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: idx})
	if err != nil {
		return nil, fmt.Errorf("sw_interface_dump %d: %w", idx, err)
	}
	all, err := recv("sw_interface_dump", d.Recv)
	if err != nil {
		return nil, err
	}
	for _, det := range all {
		if det.SwIfIndex == idx {
			return p.toState(det), nil
		}
	}
	return nil, nil
}

func (p *Plugin) toState(d *interfaces.SwInterfaceDetails) *ifmodel.InterfaceState {
	p.mu.RLock()
	name, ok := p.byIdx[uint32(d.SwIfIndex)]
	var typ ifmodel.Interface_Type
	if ok {
		typ = p.byName[name].typ
	}
	p.mu.RUnlock()
	if !ok || d.Tag == "" {
		return nil
	}
	status := func(up bool) ifmodel.InterfaceState_Status {
		if up {
			return ifmodel.InterfaceState_UP
		}
		return ifmodel.InterfaceState_DOWN
	}
	st := &ifmodel.InterfaceState{
		Name:         name,
		InternalName: d.InterfaceName,
		Type:         typ,
		IfIndex:      uint32(d.SwIfIndex),
		AdminStatus:  status(d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0),
		OperStatus:   status(d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0),
		LastChange:   nowUnix(),
		PhysAddress:  strings.ToLower(d.L2Address.String()),
		Speed:        uint64(d.LinkSpeed) * 1000,
	}
	if len(d.Mtu) > 0 {
		st.Mtu = d.Mtu[0]
	}
	return st
}
