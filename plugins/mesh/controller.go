package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
)

// Scheduler is the part of the kvscheduler the controller uses.
type Scheduler interface {
	Commit(ctx context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error)
	Watch(w kvscheduler.Watcher) (cancel func())
}

// Options configure a Controller.
type Options struct {
	Client    *clientv3.Client // required
	Label     string           // the agent's node label; required
	Scheduler Scheduler        // required
	Logger    *slog.Logger
	// AgentTTL is the lease of the agent's presence key (default 10s).
	AgentTTL time.Duration
	// LinkGrace is how long an endpoint link that was up may stay down
	// before its connection moves to another endpoint (default 500ms).
	LinkGrace time.Duration
	// AvoidFor is how long an endpoint left for a link that stayed down is
	// avoided by that connection, unless it registers again (default 30s).
	AvoidFor time.Duration
	// RetryMax caps the backoff after etcd errors (default 5s).
	RetryMax time.Duration
	// RxMode is the receive mode of the memif and vhost-user interfaces
	// the mesh renders (UNKNOWN: VPP's default, polling, set by nothing).
	// ADAPTIVE makes one link-up among 500 connected memifs ~15× faster on
	// FD.io VPP 25.10 (test/vpprun/linkupprobe), but VPP then crashed in
	// its memif plugin in 5 of 15 500-connection heals (0 of 11 polling):
	// not the default.
	RxMode ifmodel.Interface_RxMode_Type
	// LeasePoll is how often the leases of the endpoints in use are asked
	// for their time to live while one second or less is left (default
	// 100ms; negative: not followed, an endpoint is gone when etcd deletes
	// its key). See leases.go.
	LeasePoll time.Duration
	// RetireAfter bounds how long the endpoint-side interface a moved
	// connection left stays in VPP while connections are still healing
	// (default 10s); see retireOld.
	RetireAfter time.Duration
}

// Controller runs the mesh for one agent. Create it with New, hand
// WrapScheduler's result to the orchestrator (so that its full resyncs keep
// the mesh's values), feed it interface states with OnInterfaceState, and
// Run it.
type Controller struct {
	cli   *clientv3.Client
	sched Scheduler
	log   *slog.Logger
	opts  Options
	node  string

	// renderMu serialises the controller's scheduler commits with the
	// orchestrator's full resyncs, which must carry the mesh's values.
	renderMu sync.Mutex
	rendered map[string]*vppmeshv1.CrossConnect // connection id → value given to the scheduler
	retiring map[string]retiree                 // interface name → endpoint-side interface a moved connection left
	loaded   chan struct{}                      // closed after the first listing was rendered
	loadOnce sync.Once
	// synced is set once a full resync carried the mesh's values: before
	// it, the scheduler does not know what VPP holds, so renderings wait
	// for that resync instead of being committed as changes.
	synced atomic.Bool

	// Inputs from other goroutines (scheduler watcher, interface states),
	// taken by the loop.
	inMu      sync.Mutex
	sched2    map[string]renderState // render key or "<render key>|<derived key>" → state
	derivedOf map[string]string      // derived key → the render key it is recorded under in sched2
	links     map[string]bool        // interface name → oper up
	wake      chan struct{}
	snapMu    sync.RWMutex
	snapshot  []*vppmeshv1.ConnectionStatus // statuses this agent owns, for REST

	// Loop-only state.
	c         *cache
	downSince map[string]time.Time            // connection → when its endpoint link went down (after being up)
	wasUp     map[string]bool                 // connection → its endpoint link was up since the decision
	avoid     map[string]map[string]avoidance // connection → endpoint → until
	decidedAt map[string]time.Time            // connection → when it lost its endpoint (heal latency)
	requested map[string]time.Time            // connection → first seen without a decision (selection latency)

	// deferred holds the status writes of a reconcile pass, written
	// together at its end (see flushStatus).
	deferred []pendingWrite

	// The endpoint leases followed (leases.go): the loop sets leaseWant,
	// the follower records leaseGone.
	leaseMu   sync.Mutex
	leaseWant map[int64]bool
	leaseGone map[int64]bool
	leaseTTL  func(ctx context.Context, id int64) (int64, error) // etcdLeaseTTL; tests script it

	stats Stats
	obs   Observer
}

// pendingWrite is one status write with its allocation changes.
type pendingWrite struct {
	id, key         string
	data            []byte
	rev             int64 // the status revision it was computed from
	cur, st         *vppmeshv1.ConnectionStatus
	create, release []string // allocation keys (below MeshAllocPrefix)
	dropSide        bool     // delete the connection's ConnectionSide report
	remove          bool     // the connection is gone: delete its status (data unused)
}

// retiree is an interface a connection left when it moved to another
// endpoint: it stays desired (naming.RetirePrefix) until retireOld lets it
// go, so the move's transaction creates without waiting for its delete.
type retiree struct {
	id    string
	v     *vppmeshv1.CrossConnect // naming.Retiring
	since time.Time
}

type avoidance struct {
	until time.Time
	rev   int64 // the endpoint's registration it applies to
}

type renderState struct {
	state kvscheduler.State
	err   string
}

// Stats are the controller's counters.
type Stats struct {
	Decisions    atomic.Uint64 // decision transactions committed
	Conflicts    atomic.Uint64 // decision transactions refused by etcd (another writer won)
	Heals        atomic.Uint64
	StatusWrites atomic.Uint64
	Relists      atomic.Uint64
	Reconciles   atomic.Uint64
	// LastReconcile is when the last pass ended (unix nanoseconds): a
	// stuck controller shows here.
	LastReconcile atomic.Int64
}

// Observer receives latency observations (metrics); nil ignores them.
type Observer interface {
	// Selected: from first seeing a connection without an endpoint to its
	// status UP.
	Selected(d time.Duration)
	// Healed: from a connection losing its endpoint to its status UP again.
	Healed(d time.Duration)
}

// New checks the options and returns a controller.
func New(o Options) (*Controller, error) {
	if o.Client == nil || o.Scheduler == nil || o.Label == "" {
		return nil, errors.New("mesh: Client, Scheduler and Label are required")
	}
	if strings.Contains(o.Label, "/") {
		return nil, fmt.Errorf("mesh: agent label %q contains '/'", o.Label)
	}
	if o.AgentTTL <= 0 {
		o.AgentTTL = 10 * time.Second
	}
	if o.LinkGrace <= 0 {
		o.LinkGrace = 500 * time.Millisecond
	}
	if o.AvoidFor <= 0 {
		o.AvoidFor = 30 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.LeasePoll == 0 {
		o.LeasePoll = 100 * time.Millisecond
	}
	if o.RetireAfter <= 0 {
		o.RetireAfter = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Controller{
		cli: o.Client, sched: o.Scheduler, opts: o, node: o.Label,
		log:       log.With("component", "mesh", "label", o.Label),
		rendered:  map[string]*vppmeshv1.CrossConnect{},
		retiring:  map[string]retiree{},
		derivedOf: map[string]string{},
		loaded:    make(chan struct{}),
		sched2:    map[string]renderState{},
		links:     map[string]bool{},
		wake:      make(chan struct{}, 1),
		downSince: map[string]time.Time{},
		wasUp:     map[string]bool{},
		avoid:     map[string]map[string]avoidance{},
		decidedAt: map[string]time.Time{},
		requested: map[string]time.Time{},
		leaseGone: map[int64]bool{},
	}
	m.leaseTTL = m.etcdLeaseTTL
	return m, nil
}

// SetObserver sets the latency observer; call before Run.
func (m *Controller) SetObserver(o Observer) { m.obs = o }

// Stats returns the counters.
func (m *Controller) Stats() *Stats { return &m.stats }

// Statuses returns the statuses this agent owns, sorted by id.
func (m *Controller) Statuses() []*vppmeshv1.ConnectionStatus {
	m.snapMu.RLock()
	defer m.snapMu.RUnlock()
	return append([]*vppmeshv1.ConnectionStatus(nil), m.snapshot...)
}

func (m *Controller) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// OnInterfaceState records an interface's oper state. It never blocks.
func (m *Controller) OnInterfaceState(st *ifmodel.InterfaceState) {
	name := st.GetName()
	if !strings.HasPrefix(name, "mesh-") {
		return
	}
	up := st.GetOperStatus() == ifmodel.InterfaceState_UP
	m.log.Debug("mesh interface state", "interface", name, "oper", st.GetOperStatus().String())
	m.inMu.Lock()
	prev, known := m.links[name]
	if st.GetOperStatus() == ifmodel.InterfaceState_DELETED {
		delete(m.links, name)
	} else {
		m.links[name] = up
	}
	m.inMu.Unlock()
	if !known || prev != up {
		m.kick()
	}
}

// onSchedStatus is the scheduler watcher: it records the states of the
// mesh's values and of the values derived from them. It never blocks.
func (m *Controller) onSchedStatus(changed []kvscheduler.ValueStatus) {
	hit := false
	m.inMu.Lock()
	for _, vs := range changed {
		key := vs.Key
		if vs.Derived && strings.HasPrefix(vs.Parent, RenderPrefix) {
			key = vs.Parent + "|" + vs.Key
			if was, ok := m.derivedOf[vs.Key]; ok && was != vs.Parent {
				delete(m.sched2, was+"|"+vs.Key)
			}
			m.derivedOf[vs.Key] = vs.Parent
		} else if was, ok := m.derivedOf[vs.Key]; ok {
			// Released by its rendering (a moved connection's old
			// xconnect, or its old interface handed to a retiring value).
			delete(m.sched2, was+"|"+vs.Key)
			delete(m.derivedOf, vs.Key)
			hit = true
			continue
		} else if !strings.HasPrefix(key, RenderPrefix) {
			continue
		}
		hit = true
		if vs.State == kvscheduler.StateRemoved || vs.State == kvscheduler.StateNonexistent {
			delete(m.sched2, key)
			if vs.Derived {
				delete(m.derivedOf, vs.Key)
			}
		} else {
			m.sched2[key] = renderState{state: vs.State, err: vs.Error}
		}
	}
	m.inMu.Unlock()
	if hit {
		m.kick()
	}
}

// WrapScheduler returns the scheduler the orchestrator should use: its full
// resyncs wait for the mesh's first listing and carry the mesh's values, so
// that a resync never removes (flaps) a mesh connection.
func (m *Controller) WrapScheduler(s Scheduler) Scheduler { return &wrapped{Scheduler: s, m: m} }

type wrapped struct {
	Scheduler
	m *Controller
}

func (w *wrapped) Commit(ctx context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error) {
	if txn.Kind != kvscheduler.TxnFullResync {
		return w.Scheduler.Commit(ctx, txn)
	}
	select {
	case <-w.m.loaded:
	case <-ctx.Done():
		return kvscheduler.TxnRecord{}, fmt.Errorf("waiting for the mesh's first listing: %w", ctx.Err())
	}
	w.m.renderMu.Lock()
	defer w.m.renderMu.Unlock()
	vals := append(make([]kvscheduler.KeyValue, 0, len(txn.Values)+len(w.m.rendered)), txn.Values...)
	for id, v := range w.m.rendered {
		vals = append(vals, kvscheduler.KeyValue{Key: RenderKey(id), Value: v})
	}
	for name, r := range w.m.retiring {
		vals = append(vals, kvscheduler.KeyValue{Key: naming.RetirePrefix + name, Value: r.v})
	}
	txn.Values = vals
	rec, err := w.Scheduler.Commit(ctx, txn)
	if err == nil && !w.m.synced.Swap(true) {
		w.m.kick() // states may be reported now
	}
	return rec, err
}

// Run lists and watches the mesh keys until ctx ends; it returns nil then.
func (m *Controller) Run(ctx context.Context) error {
	unwatch := m.sched.Watch(m.onSchedStatus)
	defer unwatch()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { m.presence(ctx) })
	if m.opts.LeasePoll > 0 {
		wg.Go(func() { m.followLeases(ctx) })
	}

	delay := time.Duration(0)
	for {
		if delay > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
		rev, err := m.load(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			delay = min(max(2*delay, 100*time.Millisecond), m.opts.RetryMax)
			m.log.Warn("mesh listing failed, retrying", "error", err, "retry_in", delay)
			continue
		}
		delay = 0
		m.stats.Relists.Add(1)
		m.reconcile(ctx)
		m.loadOnce.Do(func() { close(m.loaded) })
		err = m.follow(ctx, rev+1)
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("mesh watch ended, re-listing", "error", err)
		delay = 100 * time.Millisecond
	}
}

// presence keeps /vppmesh/v1/agent/<label> under a lease while the agent
// runs, so that others know which nodes are served.
func (m *Controller) presence(ctx context.Context) {
	ttl := int64(max(m.opts.AgentTTL/time.Second, 1))
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			lease, err := m.cli.Grant(ctx, ttl)
			if err != nil {
				return err
			}
			if _, err := m.cli.Put(ctx, models.MeshAgentPrefix+m.node, m.node, clientv3.WithLease(lease.ID)); err != nil {
				return err
			}
			ka, err := m.cli.KeepAlive(ctx, lease.ID)
			if err != nil {
				return err
			}
			delay = 100 * time.Millisecond
			for range ka {
			}
			return errors.New("lease keep-alive ended")
		}()
		if ctx.Err() != nil {
			break
		}
		m.log.Warn("mesh presence lost, renewing", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, m.opts.RetryMax)
	}
	// Best effort: tell the others at once rather than at lease expiry.
	dctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = m.cli.Delete(dctx, models.MeshAgentPrefix+m.node)
}

// load lists every mesh key into a fresh cache.
func (m *Controller) load(ctx context.Context) (int64, error) {
	resp, err := m.cli.Get(ctx, models.MeshRoot, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", models.MeshRoot, err)
	}
	c := newCache()
	for _, kv := range resp.Kvs {
		c.apply(m.log, string(kv.Key), kv.Value, kv.ModRevision, false)
		c.noteLease(string(kv.Key), kv.Lease, false)
	}
	m.c = c
	// Link states VPP has not reported yet are taken from this agent's
	// last statuses: after an agent restart VPP's interfaces are unchanged
	// and send no event, and the interface plugin publishes states only
	// for interfaces it knew when it subscribed. Any later event wins.
	m.inMu.Lock()
	for _, st := range c.status {
		if st.GetClientNode() != m.node {
			continue
		}
		for _, l := range []*vppmeshv1.LinkStatus{st.GetClientLink(), st.GetEndpointLink()} {
			if _, known := m.links[l.GetInterface()]; l.GetInterface() != "" && !known {
				m.links[l.GetInterface()] = l.GetUp()
			}
		}
	}
	for id, side := range c.sides {
		if side.GetNode() != m.node {
			continue
		}
		epIf := side.GetEndpointLink().GetInterface()
		if epIf == "" {
			_, epIf = InterfaceNames(id)
		}
		if !m.hasLink(epIf) {
			m.links[epIf] = side.GetEndpointLink().GetUp()
		}
	}
	m.inMu.Unlock()
	m.log.Info("mesh listed", "revision", resp.Header.Revision, "services", len(c.services),
		"endpoints", len(c.endpoints), "connections", len(c.conns), "statuses", len(c.status), "agents", len(c.agents),
		"nodes", len(c.nodes), "sides", len(c.sides))
	return resp.Header.Revision, nil
}

// follow watches the mesh keys from revision from and reconciles after
// every batch of events or input change.
func (m *Controller) follow(ctx context.Context, from int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := m.cli.Watch(wctx, models.MeshRoot, clientv3.WithPrefix(), clientv3.WithRev(from))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// news: something a pass must look at. The echoes of this agent's
		// own writes are not news: at hundreds of connections they are
		// most of the watch stream, and a pass for each would put the
		// events that matter (an endpoint gone) seconds behind.
		news := true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch channel closed")
			}
			if err := resp.Err(); err != nil {
				return err
			}
			news = m.applyEvents(resp.Events)
		case <-m.wake:
		case <-tick.C:
			if !m.timersDue(time.Now()) {
				continue
			}
		}
		// Whatever the trigger, take the events already there before
		// reconciling: a pass decides from the freshest cache (a long
		// scheduler commit lets them pile up).
	drain:
		for {
			select {
			case r, ok := <-wch:
				if !ok {
					return errors.New("watch channel closed")
				}
				if err := r.Err(); err != nil {
					return err
				}
				news = m.applyEvents(r.Events) || news
			case <-m.wake:
				news = true
			default:
				break drain
			}
		}
		if news {
			m.reconcile(ctx)
		}
	}
}

// applyEvents applies watch events to the cache; it reports whether any
// was news (not only echoes of the agent's own writes).
func (m *Controller) applyEvents(evs []*clientv3.Event) bool {
	var upTo int64
	news := false
	for _, ev := range evs {
		if ev == nil || ev.Kv == nil {
			continue
		}
		if m.c.applyWatched(m.log, string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete) {
			m.c.noteLease(string(ev.Kv.Key), ev.Kv.Lease, ev.Type == clientv3.EventTypeDelete)
			news = true
		} else {
			m.log.Debug("mesh watch event older than the cache, skipped", "key", string(ev.Kv.Key), "revision", ev.Kv.ModRevision)
		}
		upTo = max(upTo, ev.Kv.ModRevision)
	}
	if len(m.c.ahead) > 0 && upTo > 0 {
		m.c.watchedUpTo(upTo)
	}
	return news
}

// timersDue reports whether a link grace period or an avoidance ended.
func (m *Controller) timersDue(now time.Time) bool {
	for _, t := range m.downSince {
		if now.Sub(t) >= m.opts.LinkGrace {
			return true
		}
	}
	for _, eps := range m.avoid {
		for _, a := range eps {
			if now.After(a.until) {
				return true
			}
		}
	}
	return false
}

// ownsStatus reports whether this agent answers for connection id.
func (m *Controller) owner(id string) string {
	if conn := m.c.conns[id]; conn != nil && conn.GetNode() != "" {
		if m.c.agents[conn.GetNode()] || conn.GetNode() == m.node {
			return conn.GetNode()
		}
		// A node no agent serves: the leader answers unless the
		// connection was decided by its node (which may be restarting).
		if st := m.c.status[id]; st.GetClientNode() == conn.GetNode() && st.GetEndpoint() != "" {
			return conn.GetNode()
		}
		return m.c.leader()
	}
	if _, bad := m.c.badConns[id]; bad {
		return m.c.leader()
	}
	if conn := m.c.conns[id]; conn != nil { // no node
		return m.c.leader()
	}
	// No connection: the status's writer cleans up, or the leader if it
	// is gone.
	st := m.c.status[id]
	if st.GetClientNode() != "" && (m.c.agents[st.GetClientNode()] || st.GetClientNode() == m.node) {
		return st.GetClientNode()
	}
	return m.c.leader()
}

// reconcile brings every connection this agent answers for to its desired
// status and rendering.
func (m *Controller) reconcile(ctx context.Context) {
	now := time.Now()
	m.inMu.Lock()
	sched := newSchedView(m.sched2)
	links := make(map[string]bool, len(m.links))
	for k, v := range m.links {
		links[k] = v
	}
	m.inMu.Unlock()
	m.c.leaseGone = m.leasesGone()

	ids := map[string]bool{}
	for id := range m.c.conns {
		ids[id] = true
	}
	for id := range m.c.badConns {
		ids[id] = true
	}
	for id := range m.c.status {
		ids[id] = true
	}
	order := sortedKeys(ids)
	// Links still rendered here are not handed out again until they are
	// gone from VPP (see decide).
	m.renderMu.Lock()
	busy := busyCounts(m.rendered)
	for _, r := range m.retiring {
		for _, k := range linkKeys(r.v) {
			busy[k]++
		}
	}
	m.renderMu.Unlock()
	render := map[string]*vppmeshv1.CrossConnect{}
	var mine []*vppmeshv1.ConnectionStatus
	for _, id := range order {
		if m.owner(id) != m.node {
			m.forget(id)
			continue
		}
		st, r := m.reconcileOne(ctx, id, now, sched, links, busy)
		if r != nil {
			render[id] = r
		}
		if st != nil {
			mine = append(mine, st)
		}
	}
	// A decision whose write did not land keeps its previous rendering;
	// the next pass decides again from what etcd holds.
	for id := range m.flushStatus(ctx) {
		if old := m.renderedOf(id); old != nil {
			render[id] = old
		} else {
			delete(render, id)
		}
	}
	m.reconcileSides(ctx, render, sched, links)
	m.commitRender(ctx, render)
	m.setLeaseWant(endpointLeases(m.c, mine))
	m.retireOld(ctx, mine, time.Now())
	m.snapMu.Lock()
	m.snapshot = mine
	m.snapMu.Unlock()
	m.stats.Reconciles.Add(1)
	m.stats.LastReconcile.Store(time.Now().UnixNano())
}

func (m *Controller) forget(id string) {
	delete(m.downSince, id)
	delete(m.wasUp, id)
	delete(m.avoid, id)
	delete(m.decidedAt, id)
	delete(m.requested, id)
}

// reconcileOne handles one connection this agent answers for: it returns
// the status it stands at and its rendering (nil: none).
func (m *Controller) reconcileOne(ctx context.Context, id string, now time.Time, sched schedView, links map[string]bool, busy map[string]int) (*vppmeshv1.ConnectionStatus, *vppmeshv1.CrossConnect) {
	cur := m.c.status[id]
	conn := m.c.conns[id]
	if conn == nil {
		if why, bad := m.c.badConns[id]; bad {
			st := &vppmeshv1.ConnectionStatus{Id: id, State: vppmeshv1.ConnectionStatus_FAILED,
				Error: "invalid connection value: " + why, Heals: cur.GetHeals(), Counters: cur.GetCounters()}
			m.writeStatus(ctx, id, cur, st, nil, now, true)
			return st, nil
		}
		// The connection is gone: remove its status and allocations (its
		// rendering goes with it).
		if cur != nil || len(m.c.allocsOf(id)) > 0 {
			m.deleteStatus(id) // batched with the pass: many clients leaving are a few transactions
		}
		m.forget(id)
		return nil, nil
	}
	if conn.GetNode() != m.node {
		// Answered by the leader: a connection no live agent serves.
		why := fmt.Sprintf("no agent serves node %q", conn.GetNode())
		if conn.GetNode() == "" {
			why = fmt.Sprintf("connection %q: node is empty", id)
		}
		st := &vppmeshv1.ConnectionStatus{Id: id, State: vppmeshv1.ConnectionStatus_FAILED, NetworkService: conn.GetNetworkService(),
			Error: why, Heals: cur.GetHeals(), Counters: cur.GetCounters()}
		m.writeStatus(ctx, id, cur, st, nil, now, true)
		return st, nil
	}

	avoid := m.avoidSet(id, now)
	d, ref := decide(m.c, m.node, conn, cur, avoid, busyFor(busy, m.renderedOf(id)))
	if d != nil {
		m.setRxMode(d.render)
	}
	if ref != nil {
		st := &vppmeshv1.ConnectionStatus{Id: id, NetworkService: conn.GetNetworkService(), ClientNode: m.node,
			State: vppmeshv1.ConnectionStatus_PENDING, Error: ref.Reason, Heals: cur.GetHeals(),
			Counters: proto.Clone(orEmpty(cur.GetCounters())).(*vppmeshv1.ConnectionCounters)}
		if ref.Failed {
			st.State = vppmeshv1.ConnectionStatus_FAILED
		}
		if cur.GetEndpoint() != "" && cur.GetNetworkService() == conn.GetNetworkService() {
			st.Heals++ // its endpoint is lost: a heal starts
			m.decidedAt[id] = now
			m.stats.Heals.Add(1)
		}
		if _, ok := m.requested[id]; !ok {
			m.requested[id] = now
		}
		m.resetLink(id)
		m.writeStatus(ctx, id, cur, st, map[string]bool{}, now, true) // batched with the pass: a mass loss of endpoints is a few transactions
		return st, nil
	}
	st := d.status
	if !sameDecision(cur, st) {
		// A new decision (first, or moved): heal bookkeeping and a fresh
		// link history.
		if cur.GetEndpoint() != "" && cur.GetEndpoint() != st.GetEndpoint() && cur.GetNetworkService() == st.GetNetworkService() {
			st.Heals++
			m.decidedAt[id] = now
			m.stats.Heals.Add(1)
		}
		if cur.GetEndpoint() == "" {
			if _, ok := m.requested[id]; !ok {
				m.requested[id] = now
			}
		}
		st.Counters.Selections++
		m.resetLink(id)
		st.State = vppmeshv1.ConnectionStatus_PENDING
		st.Error = "wiring in VPP"
		m.writeStatus(ctx, id, cur, st, d.allocs, now, true) // flushStatus reverts the rendering if it does not land
		return st, d.render
	}
	// Same decision: the state follows VPP, once the scheduler knows
	// what VPP holds (before that, a restarted agent keeps the status).
	if !m.synced.Load() && cur != nil {
		return cur, d.render
	}
	// Nor before the scheduler has reported the rendering (its watcher runs
	// after the transaction): a status is never downgraded for want of news.
	if _, reported := sched.top[RenderKey(id)]; !reported && cur != nil && d.render != nil {
		return cur, d.render
	}
	m.setState(id, st, sched, links, now)
	m.writeStatus(ctx, id, cur, st, d.allocs, now, true)
	return st, d.render
}

// setRxMode gives the memif and vhost-user ends of a rendering the
// configured rx mode (Options.RxMode).
func (m *Controller) setRxMode(v *vppmeshv1.CrossConnect) {
	for _, ep := range []*vppmeshv1.Endpoint{v.GetA(), v.GetB()} {
		if ep != nil && ep.GetVxlan() == nil {
			ep.RxMode = m.opts.RxMode
		}
	}
}

// renderedOf is what the scheduler was given for connection id (nil: none).
func (m *Controller) renderedOf(id string) *vppmeshv1.CrossConnect {
	m.renderMu.Lock()
	defer m.renderMu.Unlock()
	return m.rendered[id]
}

// resetLink forgets the link history of a connection that got a new
// decision: the endpoint interface is recreated, and its old state must not
// count.
func (m *Controller) resetLink(id string) {
	delete(m.downSince, id)
	delete(m.wasUp, id)
	_, epIf := InterfaceNames(id)
	m.inMu.Lock()
	delete(m.links, epIf)
	delete(m.links, "mesh-"+id+"-c")
	m.inMu.Unlock()
}

// avoidSet returns the endpoints connection id avoids now.
func (m *Controller) avoidSet(id string, now time.Time) map[string]bool {
	out := map[string]bool{}
	for ep, a := range m.avoid[id] {
		if now.After(a.until) || m.c.endpointRev[ep] != a.rev {
			delete(m.avoid[id], ep)
			continue
		}
		out[ep] = true
	}
	if len(m.avoid[id]) == 0 {
		delete(m.avoid, id)
	}
	return out
}

// schedView is a pass's copy of the scheduler states of the mesh's values:
// top holds the renderings (and retiring values) by key, derived the values
// derived from each rendering, by rendering key. Indexed once per pass, so
// that looking at one connection costs its own values, not all of them.
type schedView struct {
	top     map[string]renderState
	derived map[string]map[string]renderState // render key → derived key → state
}

// newSchedView copies states (keys as onSchedStatus records them).
func newSchedView(states map[string]renderState) schedView {
	v := schedView{top: make(map[string]renderState, len(states)), derived: map[string]map[string]renderState{}}
	for k, st := range states {
		parent, child, ok := strings.Cut(k, "|")
		if !ok {
			v.top[k] = st
			continue
		}
		if v.derived[parent] == nil {
			v.derived[parent] = map[string]renderState{}
		}
		v.derived[parent][child] = st
	}
	return v
}

// renderProgress tells how the scheduler is doing with a connection's
// rendering: the refusals of it or its derived values, or that it is not
// all configured yet.
func renderProgress(id string, sched schedView) (failed []string, pending bool) {
	key := RenderKey(id)
	rs, ok := sched.top[key]
	switch {
	case !ok:
		pending = true
	case rs.state == kvscheduler.StateFailed || rs.state == kvscheduler.StateInvalid:
		failed = append(failed, rs.err)
	case rs.state != kvscheduler.StateConfigured:
		pending = true
	}
	for k, v := range sched.derived[key] {
		switch v.state {
		case kvscheduler.StateFailed, kvscheduler.StateInvalid:
			failed = append(failed, k+": "+v.err)
		case kvscheduler.StateConfigured:
		default:
			pending = true
		}
	}
	if len(sched.derived[key]) < 4 { // two interfaces, two xconnects
		pending = true
	}
	sort.Strings(failed)
	return failed, pending
}

// setState fills state and error of a decided status from the scheduler's
// states and the links, and starts a heal when the endpoint link stayed
// down past the grace period. For a cross-node connection the endpoint
// link is the endpoint node's side (its ConnectionSide report).
func (m *Controller) setState(id string, st *vppmeshv1.ConnectionStatus, sched schedView, links map[string]bool, now time.Time) {
	failed, pending := renderProgress(id, sched)
	clientIf, epIf := InterfaceNames(id)
	if st.GetVxlan() == nil && st.GetEndpointLink().GetInterface() != "" {
		epIf = st.GetEndpointLink().GetInterface() // "-b" or "-c" (endpointIfName)
	}
	cUp, eUp := links[clientIf], links[epIf]
	var farFailed, farPending string
	if x := st.GetVxlan(); x != nil {
		side := m.c.sides[id]
		switch {
		case side == nil || side.GetNode() != st.GetEndpointNode() || side.GetEndpoint() != st.GetEndpoint() ||
			side.GetVni() != x.GetVni() || !sameLink(side.GetEndpointLink(), st.GetEndpointLink()):
			farPending = "wiring on node " + st.GetEndpointNode()
		case side.GetState() == vppmeshv1.ConnectionStatus_FAILED:
			farFailed = "node " + st.GetEndpointNode() + ": " + side.GetError()
		case side.GetState() == vppmeshv1.ConnectionStatus_PENDING:
			farPending = "wiring on node " + st.GetEndpointNode()
		}
		eUp = side.GetState() == vppmeshv1.ConnectionStatus_UP && farPending == "" && farFailed == ""
	}
	st.GetClientLink().Up, st.GetEndpointLink().Up = cUp, eUp
	switch {
	case len(failed) > 0:
		st.State = vppmeshv1.ConnectionStatus_FAILED
		st.Error = "VPP refused the wiring: " + strings.Join(failed, "; ")
	case farFailed != "":
		st.State = vppmeshv1.ConnectionStatus_FAILED
		st.Error = farFailed
	case pending:
		st.State = vppmeshv1.ConnectionStatus_PENDING
		st.Error = "wiring in VPP"
	case farPending != "":
		st.State = vppmeshv1.ConnectionStatus_PENDING
		st.Error = farPending
	case cUp && eUp:
		st.State = vppmeshv1.ConnectionStatus_UP
		st.Error = ""
	default:
		st.State = vppmeshv1.ConnectionStatus_DOWN
		var down []string
		if !cUp {
			down = append(down, "client link "+clientIf+" down")
		}
		if !eUp {
			down = append(down, "endpoint link "+epIf+" down")
		}
		st.Error = strings.Join(down, "; ")
	}
	if pending || len(failed) > 0 || farPending != "" || farFailed != "" {
		return
	}
	if eUp {
		m.wasUp[id] = true
		delete(m.downSince, id)
		if st.State == vppmeshv1.ConnectionStatus_UP {
			if t, ok := m.decidedAt[id]; ok {
				if m.obs != nil {
					m.obs.Healed(now.Sub(t))
				}
				delete(m.decidedAt, id)
			}
			if t, ok := m.requested[id]; ok {
				if m.obs != nil {
					m.obs.Selected(now.Sub(t))
				}
				delete(m.requested, id)
			}
		}
		return
	}
	if !m.wasUp[id] {
		return // never came up on this endpoint yet: the endpoint may still be connecting
	}
	t, ok := m.downSince[id]
	if !ok {
		m.downSince[id] = now
		st.Counters.LinkDowns++
		return
	}
	if now.Sub(t) >= m.opts.LinkGrace {
		ep := st.GetEndpoint()
		if m.avoid[id] == nil {
			m.avoid[id] = map[string]avoidance{}
		}
		m.avoid[id][ep] = avoidance{until: now.Add(m.opts.AvoidFor), rev: m.c.endpointRev[ep]}
		delete(m.downSince, id)
		m.log.Info("mesh endpoint link stayed down, moving the connection", "connection", id, "endpoint", ep, "down_for", now.Sub(t).Round(time.Millisecond))
		m.kick() // the next pass re-selects
	}
}

// writeStatus writes st for id if it differs from cur, in one etcd
// transaction with the allocations: the status key must still be at the
// revision this agent saw, every new allocation key must not exist, and
// allocations the connection no longer holds are released. allocs nil
// leaves allocations alone. It reports whether the cache now holds st.
//
// With deferable, the write is queued instead and flushStatus writes the
// pass's queued writes together, many per etcd transaction with every
// guard kept (a mass heal is then a few transactions, not one per
// connection). The allocations it creates are reserved in the cache at once
// so that later decisions of the same pass do not take them.
func (m *Controller) writeStatus(ctx context.Context, id string, cur, st *vppmeshv1.ConnectionStatus, allocs map[string]bool, now time.Time, deferable bool) bool {
	held := m.c.allocsOf(id)
	var create, release []string
	if allocs != nil {
		for k := range allocs {
			if !held[k] {
				create = append(create, k)
			}
		}
		for k := range held {
			if !allocs[k] {
				release = append(release, k)
			}
		}
	}
	if sameStatus(cur, st) && len(create) == 0 && len(release) == 0 {
		st.LastChange = cur.GetLastChange()
		return true
	}
	if cur == nil || cur.GetState() != st.GetState() {
		if st.Counters == nil {
			st.Counters = &vppmeshv1.ConnectionCounters{}
		}
		st.Counters.StateChanges++
	}
	st.LastChange = now.UTC().Format(time.RFC3339Nano)
	data, err := models.Marshal(st)
	if err != nil {
		m.log.Error("mesh status encoding failed", "connection", id, "error", err)
		return false
	}
	sort.Strings(create)
	sort.Strings(release)
	w := pendingWrite{id: id, key: models.MeshKey(models.MeshStatus, id), data: data, rev: m.c.statusRev[id],
		cur: cur, st: st, create: create, release: release,
		// The endpoint node's report goes with the decision it is about.
		dropSide: m.c.sides[id] != nil && !sameDecision(cur, st)}
	if deferable {
		// Reserved in the cache so that later decisions of this pass see
		// the allocations and the endpoint's load; flushStatus confirms
		// or restores them.
		for _, k := range create {
			m.c.setAlloc(k, id)
		}
		m.c.setStatus(id, st)
		m.deferred = append(m.deferred, w)
		return true
	}
	return m.execWrites(ctx, []pendingWrite{w}) == nil
}

func (w *pendingWrite) ops() ([]clientv3.Cmp, []clientv3.Op) {
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(w.key), "=", w.rev)}
	op := clientv3.OpPut(w.key, string(w.data))
	if w.remove {
		op = clientv3.OpDelete(w.key)
	}
	ops := []clientv3.Op{op}
	for _, k := range w.create {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(models.MeshAllocPrefix+k), "=", 0))
		ops = append(ops, clientv3.OpPut(models.MeshAllocPrefix+k, w.id))
	}
	for _, k := range w.release {
		ops = append(ops, clientv3.OpDelete(models.MeshAllocPrefix+k))
	}
	if w.dropSide {
		ops = append(ops, clientv3.OpDelete(models.MeshKey(models.MeshSide, w.id)))
	}
	return cmps, ops
}

// execWrites writes ws in one etcd transaction. On success the cache holds
// them; otherwise it returns the ids not written (all of them), after
// re-reading what the refusal concerned.
func (m *Controller) execWrites(ctx context.Context, ws []pendingWrite) map[string]bool {
	resp, err := m.sendWrites(ctx, ws)
	return m.landWrites(ctx, ws, resp, err)
}

// sendWrites is execWrites' etcd transaction; it touches nothing else, so
// that flushStatus can have several in flight.
func (m *Controller) sendWrites(ctx context.Context, ws []pendingWrite) (*clientv3.TxnResponse, error) {
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for i := range ws {
		c, o := ws[i].ops()
		cmps, ops = append(cmps, c...), append(ops, o...)
	}
	return m.txn(ctx, cmps, ops)
}

// landWrites brings the cache up to date with sendWrites' outcome.
func (m *Controller) landWrites(ctx context.Context, ws []pendingWrite, resp *clientv3.TxnResponse, err error) map[string]bool {
	failed := func() map[string]bool {
		out := map[string]bool{}
		for _, w := range ws {
			out[w.id] = true
			if w.remove {
				continue // the cache was left as it was
			}
			// Undo the reservation; refetch then reads what etcd holds.
			if w.cur == nil {
				m.c.delStatus(w.id)
			} else {
				m.c.setStatus(w.id, w.cur)
			}
			for _, k := range w.create {
				if m.c.allocs[k] == w.id {
					m.c.delAlloc(k)
				}
			}
		}
		return out
	}
	if err != nil {
		m.log.Warn("mesh status write failed", "connections", len(ws), "error", err)
		out := failed()
		for _, w := range ws {
			m.refetch(ctx, w.id, w.create)
		}
		m.kickLater()
		return out
	}
	if !resp.Succeeded {
		m.stats.Conflicts.Add(1)
		out := failed()
		if len(ws) == 1 {
			m.log.Info("mesh decision lost a race, re-reading", "connection", ws[0].id)
			m.refetch(ctx, ws[0].id, ws[0].create)
			m.kick()
		}
		return out
	}
	rev := resp.Header.Revision
	for _, w := range ws {
		if w.remove {
			m.c.applyOwn(m.log, w.key, nil, rev, true)
			for _, k := range w.release {
				m.c.applyOwn(m.log, models.MeshAllocPrefix+k, nil, rev, true)
			}
			m.c.applyOwn(m.log, models.MeshKey(models.MeshSide, w.id), nil, rev, true)
			m.stats.StatusWrites.Add(1)
			m.log.Info("mesh connection removed", "connection", w.id)
			continue
		}
		m.c.applyOwn(m.log, w.key, w.data, rev, false)
		for _, k := range w.create {
			m.c.applyOwn(m.log, models.MeshAllocPrefix+k, []byte(w.id), rev, false)
		}
		for _, k := range w.release {
			m.c.applyOwn(m.log, models.MeshAllocPrefix+k, nil, rev, true)
		}
		if w.dropSide {
			m.c.applyOwn(m.log, models.MeshKey(models.MeshSide, w.id), nil, rev, true)
		}
		m.stats.StatusWrites.Add(1)
		if !sameDecision(w.cur, w.st) {
			m.stats.Decisions.Add(1)
		}
		if w.cur.GetState() != w.st.GetState() || w.cur.GetEndpoint() != w.st.GetEndpoint() {
			m.log.Info("mesh connection", "connection", w.id, "state", w.st.GetState().String(), "endpoint", w.st.GetEndpoint(),
				"heals", w.st.GetHeals(), "reason", w.st.GetError())
		}
	}
	return nil
}

// txnOps bounds the operations of one flushStatus transaction (etcd's
// default --max-txn-ops is 128).
const txnOps = 120

// flushStatus writes the pass's deferred writes, many per etcd
// transaction. A refused batch is retried one write per transaction, so one
// conflict does not hold the others back. It returns the connections whose
// write did not land (their rendering must stay as it was).
func (m *Controller) flushStatus(ctx context.Context) map[string]bool {
	var chunks [][]pendingWrite
	for len(m.deferred) > 0 {
		n, size := 0, 0
		for n < len(m.deferred) {
			k := 2 + len(m.deferred[n].create) + len(m.deferred[n].release)
			if n > 0 && size+k > txnOps {
				break
			}
			size += k
			n++
		}
		chunks = append(chunks, m.deferred[:n])
		m.deferred = m.deferred[n:]
	}
	m.deferred = nil
	// The chunks touch disjoint keys (a pass reserves every allocation it
	// hands out, and a released one is not handed out before its release
	// lands), so their transactions go to etcd together: etcd commits
	// concurrent proposals in one batch, where one after the other each
	// waited for its own disk sync (a 250-connection heal: 10 transactions,
	// 0.5 s in a row). Their outcomes are applied in order.
	type outcome struct {
		resp *clientv3.TxnResponse
		err  error
	}
	outs := make([]outcome, len(chunks))
	sem := make(chan struct{}, flushInFlight)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outs[i].resp, outs[i].err = m.sendWrites(ctx, chunk)
		})
	}
	wg.Wait()
	failed := map[string]bool{}
	for i, chunk := range chunks {
		if m.landWrites(ctx, chunk, outs[i].resp, outs[i].err) == nil {
			continue
		}
		// A refused batch: one write per transaction, so that one
		// conflict does not hold the others back. A removal that did not
		// land is not reported: its rendering goes anyway, and the next
		// pass removes the status again.
		for _, w := range chunk {
			if (len(chunk) == 1 || m.execWrites(ctx, []pendingWrite{w}) != nil) && !w.remove {
				failed[w.id] = true
			}
		}
	}
	return failed
}

// flushInFlight bounds flushStatus' concurrent transactions.
const flushInFlight = 8

// deleteStatus queues the removal of a gone connection's status, side
// report and allocations with the pass's writes (flushStatus), guarded on
// the status revision this agent saw.
func (m *Controller) deleteStatus(id string) {
	m.deferred = append(m.deferred, pendingWrite{id: id, key: models.MeshKey(models.MeshStatus, id), rev: m.c.statusRev[id],
		cur: m.c.status[id], remove: true, release: sortedKeys(m.c.allocsOf(id)), dropSide: true})
}

func (m *Controller) txn(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return m.cli.Txn(tctx).If(cmps...).Then(ops...).Commit()
}

// refetch re-reads a connection's status and the given alloc keys after a
// refused transaction (the watch will bring them too, but the next pass
// should not repeat the same refused write).
func (m *Controller) refetch(ctx context.Context, id string, allocKeys []string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	key := models.MeshKey(models.MeshStatus, id)
	// Applied as of the read's revision: older watch events are skipped.
	if resp, err := m.cli.Get(ctx, key); err == nil {
		if len(resp.Kvs) == 0 {
			m.c.applyOwn(m.log, key, nil, resp.Header.Revision, true)
		} else {
			m.c.applyOwn(m.log, key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision, false)
		}
	}
	for _, k := range allocKeys {
		resp, err := m.cli.Get(ctx, models.MeshAllocPrefix+k)
		switch {
		case err != nil:
		case len(resp.Kvs) > 0:
			m.c.applyOwn(m.log, models.MeshAllocPrefix+k, resp.Kvs[0].Value, resp.Kvs[0].ModRevision, false)
		default:
			// A reservation that did not land.
			m.c.applyOwn(m.log, models.MeshAllocPrefix+k, nil, resp.Header.Revision, true)
		}
	}
}

func (m *Controller) kickLater() {
	time.AfterFunc(200*time.Millisecond, m.kick)
}

// commitRender gives the scheduler the renderings that changed, in one
// transaction. A same-node connection that moved to another endpoint has a
// new endpoint-side interface name (endpointIfName); its old interface is
// handed to a retiring value in the same transaction, so the transaction
// creates the new path without deleting anything slow, and retireOld
// deletes the old interfaces later.
func (m *Controller) commitRender(ctx context.Context, rend map[string]*vppmeshv1.CrossConnect) {
	m.renderMu.Lock()
	defer m.renderMu.Unlock()
	if !m.synced.Load() {
		m.rendered = rend // the first full resync carries them
		return
	}
	var vals, first, retire []kvscheduler.KeyValue
	now := time.Now()
	names := map[string]bool{}
	added := map[string]retiree{}
	for id, v := range rend {
		old, ok := m.rendered[id]
		if ok && proto.Equal(old, v) {
			continue
		}
		vals = append(vals, kvscheduler.KeyValue{Key: RenderKey(id), Value: v})
		a, b := naming.Names(v)
		names[a], names[b] = true, true
		if !ok {
			continue
		}
		if _, ob := naming.Names(old); ob != b && ob != a {
			_, r := naming.Retiring(old)
			added[ob] = retiree{id: id, v: r, since: now}
		}
	}
	for id := range m.rendered {
		if _, ok := rend[id]; !ok {
			vals = append(vals, kvscheduler.KeyValue{Key: RenderKey(id)})
		}
	}
	if len(vals) == 0 {
		return
	}
	// A retiring interface whose name a rendering takes again goes first,
	// in this transaction: the rendering owns the name from now on.
	var reused []string
	for name := range m.retiring {
		if names[name] {
			first = append(first, kvscheduler.KeyValue{Key: naming.RetirePrefix + name})
			reused = append(reused, name)
		}
	}
	for name, r := range added {
		if !names[name] {
			retire = append(retire, kvscheduler.KeyValue{Key: naming.RetirePrefix + name, Value: r.v})
		}
	}
	for _, l := range [][]kvscheduler.KeyValue{first, vals, retire} {
		sort.Slice(l, func(i, j int) bool { return l[i].Key < l[j].Key })
	}
	// Renderings before retiring values: a rendering lets its old
	// interface go before the retiring value takes it over.
	all := append(append(first, vals...), retire...)
	if _, err := m.sched.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Description: "mesh connections", Values: all}); err != nil {
		m.log.Warn("mesh render commit failed", "error", err)
		m.kickLater()
		return
	}
	m.rendered = rend
	for _, name := range reused {
		delete(m.retiring, name)
	}
	for _, kv := range retire {
		name := strings.TrimPrefix(kv.Key, naming.RetirePrefix)
		m.retiring[name] = added[name]
	}
	if len(retire) > 0 {
		m.log.Info("mesh moved connections: old endpoint interfaces retire later", "interfaces", len(retire))
		time.AfterFunc(m.opts.RetireAfter, m.kick)
	}
}

// retireOld deletes the retiring interfaces in a transaction of their own,
// once none of them belongs to a connection that is still being wired or
// coming up on its new endpoint (so that the deletes, slow in VPP, never
// hold up a heal), or once the oldest has waited RetireAfter.
func (m *Controller) retireOld(ctx context.Context, mine []*vppmeshv1.ConnectionStatus, now time.Time) {
	m.renderMu.Lock()
	defer m.renderMu.Unlock()
	if len(m.retiring) == 0 || !m.synced.Load() {
		return
	}
	state := make(map[string]vppmeshv1.ConnectionStatus_State, len(mine))
	for _, st := range mine {
		state[st.GetId()] = st.GetState()
	}
	overdue := false
	for _, r := range m.retiring {
		overdue = overdue || now.Sub(r.since) >= m.opts.RetireAfter
	}
	if !overdue {
		for _, r := range m.retiring {
			st, ok := state[r.id]
			if _, rendered := m.rendered[r.id]; rendered && ok && st != vppmeshv1.ConnectionStatus_UP && st != vppmeshv1.ConnectionStatus_FAILED {
				return // still healing: the next pass looks again
			}
		}
	}
	vals := make([]kvscheduler.KeyValue, 0, len(m.retiring))
	for name := range m.retiring {
		vals = append(vals, kvscheduler.KeyValue{Key: naming.RetirePrefix + name})
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i].Key < vals[j].Key })
	if _, err := m.sched.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Description: "mesh retiring interfaces", Values: vals}); err != nil {
		m.log.Warn("mesh retiring commit failed", "error", err)
		m.kickLater()
		return
	}
	m.log.Info("mesh old endpoint interfaces deleted", "interfaces", len(vals), "overdue", overdue)
	clear(m.retiring)
}

// sameLink reports whether two link statuses name the same link (their up
// flags aside).
func sameLink(a, b *vppmeshv1.LinkStatus) bool {
	return a.GetInterface() == b.GetInterface() && proto.Equal(a.GetMemif(), b.GetMemif()) &&
		proto.Equal(a.GetVhostUser(), b.GetVhostUser())
}

// reconcileSides renders this node's side of the cross-node connections
// whose status names one of its endpoints (VXLAN ↔ endpoint link) into
// render, and reports each side's state in its ConnectionSide key. It
// removes the reports of sides it no longer renders.
func (m *Controller) reconcileSides(ctx context.Context, render map[string]*vppmeshv1.CrossConnect, sched schedView, links map[string]bool) {
	mine := map[string]bool{}
	for _, id := range sortedKeys(statusIDs(m.c)) {
		st := m.c.status[id]
		if st.GetEndpointNode() != m.node || st.GetClientNode() == m.node || st.GetVxlan() == nil {
			continue
		}
		if _, taken := render[id]; taken {
			continue // owned here as a client connection: never both
		}
		v, why := sideRender(m.c, m.node, st)
		if v == nil && why == "" {
			continue
		}
		mine[id] = true
		side := &vppmeshv1.ConnectionSide{Id: id, Node: m.node, Endpoint: st.GetEndpoint(), Vni: st.GetVxlan().GetVni(),
			EndpointLink: proto.Clone(st.GetEndpointLink()).(*vppmeshv1.LinkStatus)}
		side.EndpointLink.Up = false
		if v == nil {
			side.State, side.Error = vppmeshv1.ConnectionStatus_FAILED, why
		} else {
			m.setRxMode(v)
			render[id] = v
			// As for the client's side: no news is no downgrade (a
			// restarted agent keeps its reports until VPP is known).
			if _, reported := sched.top[RenderKey(id)]; !m.synced.Load() || !reported {
				if cur := m.c.sides[id]; cur != nil {
					continue
				}
			}
			failed, pending := renderProgress(id, sched)
			_, epIf := naming.Names(v)
			if old := m.renderedOf(id); old == nil || !proto.Equal(old, v) {
				// Committed after this pass: the states seen so far are
				// the previous rendering's, and so is the link's.
				pending = true
				m.inMu.Lock()
				delete(m.links, epIf)
				m.inMu.Unlock()
				delete(links, epIf)
			}
			side.EndpointLink.Up = links[epIf]
			switch {
			case len(failed) > 0:
				side.State, side.Error = vppmeshv1.ConnectionStatus_FAILED, "VPP refused the wiring: "+strings.Join(failed, "; ")
			case pending:
				side.State, side.Error = vppmeshv1.ConnectionStatus_PENDING, "wiring in VPP"
			case side.EndpointLink.Up:
				side.State = vppmeshv1.ConnectionStatus_UP
			default:
				side.State, side.Error = vppmeshv1.ConnectionStatus_DOWN, "endpoint link "+epIf+" down"
			}
		}
		if proto.Equal(side, m.c.sides[id]) {
			continue
		}
		m.writeSide(ctx, id, side)
	}
	// Reports of sides no longer rendered here.
	for _, id := range sortedKeys(sideIDs(m.c)) {
		if side := m.c.sides[id]; side.GetNode() == m.node && !mine[id] {
			key := models.MeshKey(models.MeshSide, id)
			resp, err := m.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", m.c.sideRev[id])},
				[]clientv3.Op{clientv3.OpDelete(key)})
			if err != nil {
				m.log.Warn("mesh side report removal failed", "connection", id, "error", err)
				m.kickLater()
				continue
			}
			if resp.Succeeded {
				m.c.applyOwn(m.log, key, nil, resp.Header.Revision, true)
			}
		}
	}
}

// writeSide writes this node's report on its side of a cross-node
// connection, if the connection's status is still the one it was computed
// from (a report never outlives the decision it is about).
func (m *Controller) writeSide(ctx context.Context, id string, side *vppmeshv1.ConnectionSide) {
	data, err := models.Marshal(side)
	if err != nil {
		m.log.Error("mesh side report encoding failed", "connection", id, "error", err)
		return
	}
	key := models.MeshKey(models.MeshSide, id)
	statusKey := models.MeshKey(models.MeshStatus, id)
	resp, err := m.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(statusKey), "=", m.c.statusRev[id])},
		[]clientv3.Op{clientv3.OpPut(key, string(data))})
	if err != nil {
		m.log.Warn("mesh side report failed", "connection", id, "error", err)
		m.kickLater()
		return
	}
	if !resp.Succeeded {
		return // the status moved on; its watch event brings the news
	}
	m.c.applyOwn(m.log, key, data, resp.Header.Revision, false)
	m.stats.StatusWrites.Add(1)
	m.log.Info("mesh connection side", "connection", id, "endpoint", side.GetEndpoint(), "vni", side.GetVni(),
		"state", side.GetState().String(), "reason", side.GetError())
}

func statusIDs(c *cache) map[string]bool {
	out := make(map[string]bool, len(c.status))
	for id := range c.status {
		out[id] = true
	}
	return out
}

func sideIDs(c *cache) map[string]bool {
	out := make(map[string]bool, len(c.sides))
	for id := range c.sides {
		out[id] = true
	}
	return out
}

// hasLink reports whether a link state is known; inMu must be held.
func (m *Controller) hasLink(name string) bool {
	_, ok := m.links[name]
	return ok
}
