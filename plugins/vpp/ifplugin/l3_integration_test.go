package ifplugin_test

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
)

// A per-queue rx mode VPP refuses (a memif without its peer has no rx
// queue, -9) fails only the derived rx-modes value; the interface stays
// CONFIGURED, and a mode for all queues is taken.
func TestRxModesFailAloneAndUpdate(t *testing.T) {
	e := startEnv(t)
	s, _ := e.agent(t)
	m := &ifmodel.Interface{Name: "m1", Type: ifmodel.Interface_MEMIF, Enabled: true,
		Link:    &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 1, SocketFilename: filepath.Join(e.dir, "m.sock")}},
		RxModes: []*ifmodel.Interface_RxMode{{Queue: 0, Mode: ifmodel.Interface_RxMode_POLLING}}}
	commit(t, s, kvscheduler.TxnChange, m)
	requireConfigured(t, s, "m1")
	st, _ := s.StatusOf(ifplugin.RxModesKey("m1"))
	if st.State != kvscheduler.StateFailed || !strings.Contains(st.Error, "-9") && !strings.Contains(st.Error, "Unimplemented") {
		t.Fatalf("per-queue rx mode on an unconnected memif: %s %q, want FAILED with VPP's -9", st.State, st.Error)
	}
	m = proto.Clone(m).(*ifmodel.Interface) // the scheduler keeps the committed one
	m.RxModes = []*ifmodel.Interface_RxMode{{DefaultMode: true, Mode: ifmodel.Interface_RxMode_ADAPTIVE}}
	commit(t, s, kvscheduler.TxnChange, m)
	requireConfigured(t, s, "m1")
	waitFor(t, "rx modes CONFIGURED", func() bool {
		st, _ := s.StatusOf(ifplugin.RxModesKey("m1"))
		return st.State == kvscheduler.StateConfigured
	})
	m = proto.Clone(m).(*ifmodel.Interface)
	m.RxModes = nil
	commit(t, s, kvscheduler.TxnChange, m)
	if st, ok := s.StatusOf(ifplugin.RxModesKey("m1")); ok && st.State != kvscheduler.StateRemoved && st.State != kvscheduler.StateNonexistent {
		t.Fatalf("rx modes left after they were dropped: %s", st.State)
	}
	if c := e.sim.CallCounts()["sw_interface_set_rx_mode"]; c < 3 {
		t.Fatalf("sw_interface_set_rx_mode sent %d times, want the failed one, the set and the reset", c)
	}
}

// A sub-interface waits for its parent, is created as <parent>.<id>,
// and goes back to PENDING (deleted from VPP first) when the parent goes.
func TestSubInterfaceFollowsParent(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	sub := &ifmodel.Interface{Name: "vlan10", Type: ifmodel.Interface_SUB_INTERFACE, Enabled: true,
		Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "trunk", SubId: 10, TagRwOption: ifmodel.SubInterface_POP1}}}
	commit(t, s, kvscheduler.TxnChange, sub)
	if st := state(t, s, "vlan10"); st.State != kvscheduler.StatePending || len(st.Missing) != 1 || st.Missing[0] != ifplugin.Key("trunk") {
		t.Fatalf("sub-interface without parent: %s missing %v", st.State, st.Missing)
	}
	commit(t, s, kvscheduler.TxnChange, &ifmodel.Interface{Name: "trunk", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true})
	requireConfigured(t, s, "trunk", "vlan10")
	idx, _ := p.SwIfIndex("vlan10")
	var name string
	for _, i := range e.sim.Interfaces() {
		if i.SwIfIndex == idx {
			name = i.Name
		}
	}
	if name != "loop0.10" {
		t.Fatalf("sub-interface in VPP is %q, want loop0.10", name)
	}
	if rec := commit(t, s, kvscheduler.TxnDownstreamResync); len(rec.Ops) != 0 {
		t.Fatalf("resync recreated: %+v", rec.Ops)
	}
	del(t, s, "trunk")
	if st := state(t, s, "vlan10"); st.State != kvscheduler.StatePending {
		t.Fatalf("sub-interface of a deleted parent is %s", st.State)
	}
	for _, i := range e.sim.Interfaces() {
		if strings.HasPrefix(i.Name, "loop0") {
			t.Fatalf("%s still in VPP", i.Name)
		}
	}
}
