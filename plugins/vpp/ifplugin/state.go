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
// Events are coalesced per interface and treated as triggers, not as the
// interface's state: VPP's sw_interface_event (src/vnet/interface_api.c,
// link_state_process) ORs together the events of one batch and sets
// ADMIN_UP / LINK_UP only for "went up" events; a "went down" event, an
// interface add, or any mix of them in one batch gives flags 0. So what
// the bits prove (an up) is published at once, and every evented
// interface's flags are read back from VPP once events pause (coalesced:
// one filtered sw_interface_dump each, one full dump above a threshold);
// the re-read state is published when it differs. Reading events never
// waits for a publication, so govpp's buffers do not overflow during a
// bulk change.
func (p *Plugin) RunStateWatch(ctx context.Context, conn <-chan govppmux.Event) {
	q := newEventQueue()
	p.stateMu.Lock()
	p.stateQ = q
	p.stateMu.Unlock()
	defer func() {
		p.stateMu.Lock()
		p.stateQ = nil
		p.stateMu.Unlock()
	}()
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

// detailsDebounce is how long the event stream must pause before the
// publisher reads the flags and details of evented interfaces: during a
// bulk create those reads would queue in front of the creates on the one
// VPP connection. refreshMaxDelay bounds the wait when events never pause.
const (
	detailsDebounce = 50 * time.Millisecond
	refreshMaxDelay = time.Second
)

// publishLoop turns queued events into published states until ctx ends.
// What an event proves goes out at once; the interfaces it names are read
// back from VPP once the events pause (or refreshMaxDelay after the first
// unread one), and their state is published again when it changed.
func (p *Plugin) publishLoop(ctx context.Context, q *eventQueue) {
	stale := map[uint32]bool{}
	var first time.Time
	idle := time.NewTimer(detailsDebounce)
	idle.Stop()
	for {
		select {
		case <-ctx.Done():
			idle.Stop()
			return
		case <-idle.C:
			p.refreshStates(ctx, stale)
			stale = map[uint32]bool{}
			continue
		case <-q.kick:
		}
		evs, snap := q.take()
		if snap {
			// The snapshot reads every interface, so the queued events
			// are covered by it (they happened before the dump).
			p.snapshot(ctx)
			stale = map[uint32]bool{}
			continue
		}
		if len(stale) == 0 {
			first = time.Now()
		}
		for _, idx := range p.publishEvents(evs) {
			stale[idx] = true
		}
		if len(stale) > 0 {
			wait := detailsDebounce
			if rest := refreshMaxDelay - time.Since(first); rest < wait {
				wait = max(rest, 0)
			}
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(wait)
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

// publishEvents publishes what each event proves and returns the
// interfaces to read back from VPP. A deletion is final. Otherwise an
// ADMIN_UP or LINK_UP bit proves that the interface went up during the
// batch; a clear bit proves nothing (VPP sends no bit for a "went down"),
// so the cached flags keep it until the read-back. What an event does not
// carry (VPP name, MAC, MTU, speed) comes from the details cache.
func (p *Plugin) publishEvents(evs []*interfaces.SwInterfaceEvent) (stale []uint32) {
	for _, e := range evs {
		idx := uint32(e.SwIfIndex)
		name, ok := p.NameOf(idx)
		if !ok {
			continue
		}
		if e.Deleted {
			p.forgetDetails(idx)
			p.forgetPublished(idx)
			p.publish(&ifmodel.InterfaceState{Name: name, IfIndex: idx,
				AdminStatus: ifmodel.InterfaceState_DELETED, OperStatus: ifmodel.InterfaceState_DELETED, LastChange: nowUnix()})
			continue
		}
		stale = append(stale, idx)
		up := e.Flags & (interface_types.IF_STATUS_API_FLAG_ADMIN_UP | interface_types.IF_STATUS_API_FLAG_LINK_UP)
		if _, ok := p.mergeFlags(idx, up); ok {
			p.publishIfChanged(idx)
		}
	}
	return stale
}

// mergeFlags adds proven-up bits to a cached interface; it reports the new
// details only when that changed them.
func (p *Plugin) mergeFlags(idx uint32, up interface_types.IfStatusFlags) (ifDetails, bool) {
	p.detMu.Lock()
	defer p.detMu.Unlock()
	d, ok := p.details[idx]
	if !ok || d.flags|up == d.flags {
		return d, false
	}
	d.flags |= up
	p.details[idx] = d
	return d, true
}

// detailDumpsInFlight bounds the per-interface dumps of a read-back; above
// bulkDetailsThreshold interfaces one full dump is cheaper than a dump each.
const (
	detailDumpsInFlight  = 8
	bulkDetailsThreshold = 256
)

// refreshStates reads the given interfaces back from VPP and publishes the
// state of each one that differs from the last state published for it (or
// that was never published). An interface the read does not return is
// gone; its deletion event publishes that.
func (p *Plugin) refreshStates(ctx context.Context, stale map[uint32]bool) {
	for idx := range stale {
		if _, known := p.NameOf(idx); !known {
			delete(stale, idx)
		}
	}
	if len(stale) == 0 {
		return
	}
	if len(stale) > bulkDetailsThreshold {
		// After a bulk change: one full dump (the events have paused, so
		// its replies do not compete with them) instead of thousands.
		if err := p.refreshDetails(ctx, ^interface_types.InterfaceIndex(0)); err != nil {
			p.log.Warn("interface state read failed", "api", "sw_interface_dump", "count", len(stale), "error", err)
			return
		}
		for idx := range stale {
			p.publishIfChanged(idx)
		}
		return
	}
	sem := make(chan struct{}, detailDumpsInFlight)
	var wg sync.WaitGroup
	for idx := range stale {
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
			p.publishIfChanged(idx)
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
	p.detMu.Lock()
	p.published = make(map[uint32]publishedState, len(all))
	p.detMu.Unlock()
	for _, det := range all {
		p.publishIfChanged(uint32(det.SwIfIndex))
	}
}

// publishedState is what one published state was built from: the
// interface's name (VPP reuses a freed sw_if_index for the next interface)
// and its details.
type publishedState struct {
	name string
	d    ifDetails
}

// publishIfChanged publishes the state of interface idx from the details
// cache unless the last state published for it was built from the same
// name and details. An interface that is not (yet) the agent's is skipped
// and stays unpublished, so it goes out once it is.
func (p *Plugin) publishIfChanged(idx uint32) {
	d, ok := p.detailsOf(idx)
	if !ok {
		return
	}
	st := p.toState(idx, d)
	if st == nil {
		return
	}
	// Whenever VPP reports the link up (a peer that reconnected between
	// two reads shows no change here), the rx modes are checked: VPP
	// recreates a memif's queues polling at each connect.
	if d.flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0 && p.hasRxWant(st.Name) {
		go p.reapplyRxModes(st.Name, idx)
	}
	now := publishedState{name: st.Name, d: d}
	p.detMu.Lock()
	if p.published[idx] == now {
		p.detMu.Unlock()
		return
	}
	p.published[idx] = now
	p.detMu.Unlock()
	p.publish(st)
}

// forgetPublished drops what was published for idx (the interface is gone).
func (p *Plugin) forgetPublished(idx uint32) {
	p.detMu.Lock()
	delete(p.published, idx)
	p.detMu.Unlock()
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

// RefreshStates has the state watch read every interface again and publish
// what VPP reports now (no-op before RunStateWatch). The agent calls it after
// a resync that followed a VPP restart: states published while that resync
// raced with VPP's events are then replaced by VPP's settled view.
func (p *Plugin) RefreshStates() { p.requestStateSnapshot() }

// requestStateSnapshot asks the running state watch (if any) to read and
// publish every agent interface's state again.
func (p *Plugin) requestStateSnapshot() {
	p.stateMu.Lock()
	q := p.stateQ
	p.stateMu.Unlock()
	if q != nil {
		q.requestSnapshot()
	}
}
