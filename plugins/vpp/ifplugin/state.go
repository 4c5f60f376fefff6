package ifplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
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
//
// Events are coalesced per interface (the latest wins) and turned into
// states without asking VPP again: the event carries the admin and link
// flags, the plugin knows the rest. Reading events never waits for a
// publication, so govpp's buffers do not overflow during a bulk change.
func (p *Plugin) RunStateWatch(ctx context.Context, conn <-chan govppmux.Event) {
	q := newEventQueue()
	p.watchMu.Lock()
	p.stateQ = q
	p.watchMu.Unlock()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		p.publishLoop(ctx, q)
	}()
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
		<-pubDone
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
			q.requestSnapshot()
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
					q.put(e)
				}
			}
		}
	}
}

// RefreshStates has the state watch read every interface again and publish
// what VPP reports now (no-op before RunStateWatch). The agent calls it after
// a resync that followed a VPP restart: states published while that resync
// raced with VPP's events are then replaced by VPP's settled view.
func (p *Plugin) RefreshStates() {
	p.watchMu.Lock()
	q := p.stateQ
	p.watchMu.Unlock()
	if q != nil {
		q.requestSnapshot()
	}
}

// detailsDebounce is how long the event stream must pause before the
// publisher reads the details of new interfaces: during a bulk create those
// reads would queue in front of the creates on the one VPP connection.
const detailsDebounce = 50 * time.Millisecond

// publishLoop turns queued events into published states until ctx ends.
// States go out at once from the event and what the plugin knows; details
// VPP alone knows (its name and MAC for an interface created since the last
// dump) are read once the events pause, and the state is published again.
func (p *Plugin) publishLoop(ctx context.Context, q *eventQueue) {
	missing := map[uint32]bool{}
	idle := time.NewTimer(detailsDebounce)
	idle.Stop()
	for {
		select {
		case <-ctx.Done():
			idle.Stop()
			return
		case <-idle.C:
			p.fillDetails(ctx, missing)
			missing = map[uint32]bool{}
			continue
		case <-q.kick:
		}
		evs, snap := q.take()
		if snap {
			// The snapshot reads every interface, so the queued events
			// are covered by it (they happened before the dump).
			p.snapshot(ctx)
			missing = map[uint32]bool{}
			continue
		}
		for _, idx := range p.publishEvents(evs) {
			missing[idx] = true
		}
		if len(missing) > 0 {
			idle.Reset(detailsDebounce)
		}
	}
}

// eventQueue keeps the latest event per sw_if_index until the publisher
// takes them: a burst of N events for one interface costs one publication.
type eventQueue struct {
	mu      sync.Mutex
	pending map[uint32]*interfaces.SwInterfaceEvent
	order   []uint32 // first-arrival order, so states go out as they came
	snap    bool
	kick    chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{pending: map[uint32]*interfaces.SwInterfaceEvent{}, kick: make(chan struct{}, 1)}
}

func (q *eventQueue) put(e *interfaces.SwInterfaceEvent) {
	idx := uint32(e.SwIfIndex)
	q.mu.Lock()
	if _, ok := q.pending[idx]; !ok {
		q.order = append(q.order, idx)
	}
	q.pending[idx] = e
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) requestSnapshot() {
	q.mu.Lock()
	q.snap = true
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) signal() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *eventQueue) take() ([]*interfaces.SwInterfaceEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*interfaces.SwInterfaceEvent, 0, len(q.order))
	for _, idx := range q.order {
		out = append(out, q.pending[idx])
	}
	snap := q.snap
	q.pending, q.order, q.snap = map[uint32]*interfaces.SwInterfaceEvent{}, nil, false
	return out, snap
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
	// INVALID_REGISTRATION (-31) is VPP's answer to enabling twice on one
	// session: the first connect event can arrive after a subscription
	// made on the already connected session, and events do flow then.
	if _, err := p.ifs.WantInterfaceEvents(ctx, &interfaces.WantInterfaceEvents{EnableDisable: 1, PID: uint32(os.Getpid())}); err != nil && !errors.Is(err, api.INVALID_REGISTRATION) {
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

// publishEvents publishes a state per event and returns the interfaces
// whose details were not cached. What an event does not carry (VPP name,
// MAC, MTU, speed) comes from the details cache, which Retrieve, the
// snapshot and fillDetails fill.
func (p *Plugin) publishEvents(evs []*interfaces.SwInterfaceEvent) (missing []uint32) {
	for _, e := range evs {
		idx := uint32(e.SwIfIndex)
		name, ok := p.NameOf(idx)
		if !ok {
			continue
		}
		if e.Deleted {
			p.forgetDetails(idx)
			p.publish(&ifmodel.InterfaceState{Name: name, IfIndex: idx,
				AdminStatus: ifmodel.InterfaceState_DELETED, OperStatus: ifmodel.InterfaceState_DELETED, LastChange: nowUnix()})
			continue
		}
		d, ok := p.detailsOf(idx)
		if !ok {
			missing = append(missing, idx)
		} else if d.flags&^e.Flags != 0 {
			// FD.io VPP ORs the events it batched for an interface into
			// the flags: ADMIN_UP / LINK_UP are set when that kind went up
			// in the batch and clear otherwise (a link-up event alone
			// carries LINK_UP only, though the interface is admin up). A
			// bit the interface had that the event lacks may or may not
			// have gone down: re-read the interface instead of guessing.
			p.forgetDetails(idx)
			missing = append(missing, idx)
			continue
		}
		d.flags = e.Flags
		if ok {
			p.setCachedFlags(idx, e.Flags)
		}
		if st := p.toState(idx, d); st != nil {
			p.publish(st)
		}
	}
	return missing
}

// setCachedFlags records flags an event made certain.
func (p *Plugin) setCachedFlags(idx uint32, flags interface_types.IfStatusFlags) {
	p.detMu.Lock()
	defer p.detMu.Unlock()
	if d, ok := p.details[idx]; ok {
		d.flags = flags
		p.details[idx] = d
	}
}

// detailDumpsInFlight bounds the per-interface dumps that fill the details
// cache; above bulkDetailsThreshold missing interfaces one full dump is
// cheaper than a dump each.
const (
	detailDumpsInFlight  = 8
	bulkDetailsThreshold = 256
)

// fillDetails reads the interfaces still missing from the cache and
// publishes their complete state (flags as VPP reports them now).
func (p *Plugin) fillDetails(ctx context.Context, missing map[uint32]bool) {
	if len(missing) > bulkDetailsThreshold {
		// After a bulk create: one full dump (the events have paused, so its
		// replies do not compete with them) instead of thousands of dumps.
		if err := p.refreshDetails(ctx, ^interface_types.InterfaceIndex(0)); err != nil {
			p.log.Warn("interface state read failed", "api", "sw_interface_dump", "count", len(missing), "error", err)
			return
		}
		for idx := range missing {
			if d, ok := p.detailsOf(idx); ok {
				if st := p.toState(idx, d); st != nil {
					p.publish(st)
				}
			}
		}
		return
	}
	sem := make(chan struct{}, detailDumpsInFlight)
	var wg sync.WaitGroup
	for idx := range missing {
		if _, known := p.NameOf(idx); !known {
			continue
		}
		if _, cached := p.detailsOf(idx); cached {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.refreshDetails(ctx, interface_types.InterfaceIndex(idx)); err != nil {
				p.log.Warn("interface state read failed", "api", "sw_interface_dump", "sw_if_index", idx, "error", err)
				return
			}
			if d, ok := p.detailsOf(idx); ok {
				if st := p.toState(idx, d); st != nil {
					p.publish(st)
				}
			}
		}()
	}
	wg.Wait()
}

// refreshDetails dumps one interface (all with ~0) into the details cache.
func (p *Plugin) refreshDetails(ctx context.Context, idx interface_types.InterfaceIndex) error {
	d, err := p.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: idx})
	if err != nil {
		return fmt.Errorf("sw_interface_dump %d: %w", idx, err)
	}
	all, err := recv("sw_interface_dump", d.Recv)
	if err != nil {
		return err
	}
	p.cacheDetails(all)
	return nil
}

func (p *Plugin) cacheDetails(all []*interfaces.SwInterfaceDetails) {
	p.detMu.Lock()
	defer p.detMu.Unlock()
	for _, d := range all {
		if d.Tag == "" {
			continue // not ours: never published
		}
		c := ifDetails{internalName: d.InterfaceName, mac: d.L2Address, speed: d.LinkSpeed, flags: d.Flags}
		if len(d.Mtu) > 0 {
			c.mtu = d.Mtu[0]
		}
		p.details[uint32(d.SwIfIndex)] = c
	}
}

func (p *Plugin) detailsOf(idx uint32) (ifDetails, bool) {
	p.detMu.Lock()
	defer p.detMu.Unlock()
	d, ok := p.details[idx]
	return d, ok
}

// forgetDetails drops a cached interface, after it is deleted or when a
// change (MAC) makes the cached copy stale.
func (p *Plugin) forgetDetails(idx uint32) {
	p.detMu.Lock()
	delete(p.details, idx)
	p.detMu.Unlock()
}

// setCachedMtu keeps the cache right after the plugin changes an MTU.
func (p *Plugin) setCachedMtu(idx, mtu uint32) {
	p.detMu.Lock()
	defer p.detMu.Unlock()
	if d, ok := p.details[idx]; ok {
		d.mtu = mtu
		p.details[idx] = d
	}
}

// snapshot publishes the state of every agent interface and refills the
// details cache.
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
	p.detMu.Lock()
	p.details = make(map[uint32]ifDetails, len(all))
	p.detMu.Unlock()
	p.cacheDetails(all)
	for _, det := range all {
		idx := uint32(det.SwIfIndex)
		if d, ok := p.detailsOf(idx); ok {
			if st := p.toState(idx, d); st != nil {
				p.publish(st)
			}
		}
	}
}

// toState builds the state of one of the agent's interfaces; nil for an
// interface that is not ours (VPP's local0, an untagged one).
func (p *Plugin) toState(idx uint32, d ifDetails) *ifmodel.InterfaceState {
	p.mu.RLock()
	name, ok := p.byIdx[idx]
	var e *entry
	if ok {
		e = p.byName[name]
	}
	p.mu.RUnlock()
	if e == nil || !e.agent {
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
		InternalName: d.internalName,
		Type:         e.typ,
		IfIndex:      idx,
		AdminStatus:  status(d.flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0),
		OperStatus:   status(d.flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0),
		LastChange:   nowUnix(),
		Speed:        uint64(d.speed) * 1000,
		Mtu:          d.mtu,
	}
	if d.mac != (ethernet_types.MacAddress{}) {
		st.PhysAddress = strings.ToLower(d.mac.String())
	}
	return st
}
