package agent

import (
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/metrics"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

// counters joins VPP's packet counters (ifstats) with the agent's names and
// hands them to etcd status, REST and metrics.
type counters struct {
	a        *Agent
	interval time.Duration // how often counters are written to etcd
	sink     countersSink  // the orchestrator and the scheduler (tests: a fake)

	mu          sync.Mutex
	states      map[string]*interfaces.InterfaceState // last oper state per interface
	lastPublish time.Time
}

// countersSink is where counters go and where the desired cross-connects
// come from.
type countersSink interface {
	PublishInterfaceState(*interfaces.InterfaceState)
	PublishCounters(rel string, counters any)
	StatusPrefix(prefix string) []kvscheduler.ValueStatus
}

// agentSink is the agent's orchestrator and scheduler, resolved per call.
type agentSink struct{ a *Agent }

func (s agentSink) PublishInterfaceState(st *interfaces.InterfaceState) {
	s.a.orch.PublishInterfaceState(st)
}
func (s agentSink) PublishCounters(rel string, v any) { s.a.orch.PublishCounters(rel, v) }
func (s agentSink) StatusPrefix(p string) []kvscheduler.ValueStatus {
	return s.a.sched.StatusPrefix(p)
}

func newCounters(a *Agent, interval time.Duration) *counters {
	return &counters{a: a, interval: interval, sink: agentSink{a}, states: map[string]*interfaces.InterfaceState{}}
}

// onState remembers an interface's oper state (so counters can be added to
// it later) and publishes it.
func (c *counters) onState(st *interfaces.InterfaceState) {
	c.mu.Lock()
	if st.GetAdminStatus() == interfaces.InterfaceState_DELETED || st.GetOperStatus() == interfaces.InterfaceState_DELETED {
		delete(c.states, st.GetName())
	} else {
		prev := c.states[st.GetName()]
		st = proto.Clone(st).(*interfaces.InterfaceState)
		if prev != nil && st.Statistics == nil {
			st.Statistics = prev.Statistics
		}
		c.states[st.GetName()] = st
	}
	// Published under the lock (it only queues), so that onUpdate cannot
	// publish an older state with fresh statistics after this one.
	c.sink.PublishInterfaceState(st)
	c.mu.Unlock()
}

// onUpdate runs for every counter snapshot; etcd gets one every interval,
// and only counters that changed are written.
func (c *counters) onUpdate(snap map[string]ifstats.Counters) {
	c.mu.Lock()
	if time.Since(c.lastPublish) < c.interval {
		c.mu.Unlock()
		return
	}
	c.lastPublish = time.Now()
	var states []*interfaces.InterfaceState
	for name, st := range c.states {
		v, ok := snap[name]
		if !ok {
			continue
		}
		stats := &interfaces.InterfaceState_Statistics{
			InPackets: v.RxPackets, InBytes: v.RxBytes, OutPackets: v.TxPackets, OutBytes: v.TxBytes,
			DropPackets: v.Drops, InMissPackets: v.RxMiss, InNobufPackets: v.RxNoBuf,
			InErrorPackets: v.RxErrors, OutErrorPackets: v.TxErrors,
		}
		// Only the statistics can differ here; comparing them alone, and
		// cloning only what changed, keeps an idle 20k-interface publish
		// cheap.
		if st.Statistics != nil && proto.Equal(stats, st.Statistics) {
			continue
		}
		first := st.Statistics == nil
		st = proto.Clone(st).(*interfaces.InterfaceState)
		st.Statistics = stats
		c.states[name] = st
		// The first statistics of an idle interface are all zero: kept
		// for its next state write, not written now. Published, they
		// would only add an empty "statistics" (protojson omits zeros),
		// and right after a bulk apply of 10k cross-connects that is
		// 20,000 state documents rewritten in etcd.
		if first && proto.Size(stats) == 0 {
			continue
		}
		states = append(states, st)
	}
	o := c.sink
	// Under the lock, in the same order as onState's (see there).
	for _, st := range states {
		o.PublishInterfaceState(st)
	}
	c.mu.Unlock()
	for name, v := range snap {
		o.PublishCounters(ifplugin.Key(name), v) // ignored for derived interfaces
	}
	for name, xc := range c.crossConnects(snap) {
		o.PublishCounters(xconnect.Key(name), xc)
	}
}

// crossConnects combines interface counters per desired cross-connect.
func (c *counters) crossConnects(snap map[string]ifstats.Counters) map[string]ifstats.CrossConnectCounters {
	out := map[string]ifstats.CrossConnectCounters{}
	// Only the cross-connect keys: Status() would copy and sort every
	// derived interface and xconnect too, each publish, at 10k of them.
	for _, st := range c.sink.StatusPrefix(xconnect.KeyPrefix) {
		name, ok := strings.CutPrefix(st.Key, xconnect.KeyPrefix)
		if !ok || st.Derived {
			continue
		}
		a, b := xconnect.InterfaceNames(name)
		if xc, ok := ifstats.CrossConnect(snap, a, b); ok {
			out[name] = xc
		}
	}
	return out
}

// report is what GET /vpp/counters answers.
func (c *counters) report() any {
	snap := c.a.stats.Snapshot()
	return ifstats.Report{Connected: c.a.stats.Connected(), Interfaces: snap, CrossConnects: c.crossConnects(snap)}
}

func (c *counters) metricsInterfaces() map[string]metrics.InterfaceCounters {
	snap := c.a.stats.Snapshot()
	out := make(map[string]metrics.InterfaceCounters, len(snap))
	for name, v := range snap {
		out[name] = metrics.InterfaceCounters{RxPackets: v.RxPackets, RxBytes: v.RxBytes, TxPackets: v.TxPackets, TxBytes: v.TxBytes, Drops: v.Drops}
	}
	return out
}

func (c *counters) metricsCrossConnects() map[string]metrics.CrossConnectCounters {
	xcs := c.crossConnects(c.a.stats.Snapshot())
	out := make(map[string]metrics.CrossConnectCounters, len(xcs))
	for name, x := range xcs {
		out[name] = metrics.CrossConnectCounters{
			AtoB:  metrics.Flow{InPackets: x.AtoB.RxPackets, InBytes: x.AtoB.RxBytes, OutPackets: x.AtoB.TxPackets, OutBytes: x.AtoB.TxBytes},
			BtoA:  metrics.Flow{InPackets: x.BtoA.RxPackets, InBytes: x.BtoA.RxBytes, OutPackets: x.BtoA.TxPackets, OutBytes: x.BtoA.TxBytes},
			Drops: x.Drops,
		}
	}
	return out
}
