package agent

import (
	"testing"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
)

type fakeSink struct {
	states   []*interfaces.InterfaceState
	counters map[string]any
	xcs      []kvscheduler.ValueStatus
}

func (f *fakeSink) PublishInterfaceState(st *interfaces.InterfaceState) {
	f.states = append(f.states, st)
}
func (f *fakeSink) PublishCounters(rel string, v any)             { f.counters[rel] = v }
func (f *fakeSink) StatusPrefix(string) []kvscheduler.ValueStatus { return f.xcs }

// An idle interface's first statistics (all zero) are kept for its next
// state write, not written on their own; the first packet is written, and
// a later state change carries the statistics.
func TestCountersZeroStatisticsNotRewritten(t *testing.T) {
	f := &fakeSink{counters: map[string]any{}}
	c := &counters{interval: 0, sink: f, states: map[string]*interfaces.InterfaceState{}}
	c.onState(&interfaces.InterfaceState{Name: "m1", AdminStatus: interfaces.InterfaceState_UP})
	if len(f.states) != 1 {
		t.Fatalf("onState published %d states, want 1", len(f.states))
	}
	c.onUpdate(map[string]ifstats.Counters{"m1": {}})
	if len(f.states) != 1 {
		t.Fatalf("zero statistics rewrote the state: %v", f.states[1:])
	}
	c.onUpdate(map[string]ifstats.Counters{"m1": {}})
	if len(f.states) != 1 {
		t.Fatalf("unchanged zero statistics rewrote the state: %v", f.states[1:])
	}
	c.onState(&interfaces.InterfaceState{Name: "m1", AdminStatus: interfaces.InterfaceState_UP, OperStatus: interfaces.InterfaceState_UP})
	if len(f.states) != 2 || f.states[1].GetStatistics() == nil {
		t.Fatalf("state change published %v, want the state with the kept (zero) statistics", f.states[1:])
	}
	c.onUpdate(map[string]ifstats.Counters{"m1": {RxPackets: 5}})
	if len(f.states) != 3 || f.states[2].GetStatistics().GetInPackets() != 5 {
		t.Fatalf("first packet published %v, want in_packets 5", f.states[2:])
	}

	// An interface whose first statistics are not zero is written at once.
	c.onState(&interfaces.InterfaceState{Name: "m2"})
	c.onUpdate(map[string]ifstats.Counters{"m1": {RxPackets: 5}, "m2": {TxPackets: 1}})
	last := f.states[len(f.states)-1]
	if last.GetName() != "m2" || last.GetStatistics().GetOutPackets() != 1 {
		t.Fatalf("last published %v, want m2 with out_packets 1", last)
	}
}
