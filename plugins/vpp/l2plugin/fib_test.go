package l2plugin_test

import (
	"context"
	"strings"
	"testing"

	"go.fd.io/govpp/binapi/l2"

	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/l2plugin"
)

func fibKV(mac, iface string, action l2model.FIBEntry_Action) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: l2plugin.FIBKey("bd1", mac), Value: &l2model.FIBEntry{
		PhysAddress: mac, BridgeDomain: "bd1", Action: action, OutgoingInterface: iface, StaticConfig: true}}
}

func fibEntries(t *testing.T, e *env) map[string]*l2.L2FibTableDetails {
	t.Helper()
	d, err := l2.NewServiceClient(e.mux.Conn()).L2FibTableDump(context.Background(), &l2.L2FibTableDump{BdID: ^uint32(0)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*l2.L2FibTableDetails{}
	for {
		f, err := d.Recv()
		if err != nil {
			return out
		}
		out[f.Mac.String()] = f
	}
}

// A FORWARD entry waits for its interface to be a member of the bridge
// domain (VPP refuses it otherwise, -2); a DROP entry only for the domain.
func TestFIBPendingUntilMember(t *testing.T) {
	e := startEnv(t)
	s, ifp, _ := e.agent(t)
	fwd := fibKV("02:00:00:00:bb:01", "a", l2model.FIBEntry_FORWARD)
	drop := fibKV("02:00:00:00:bb:02", "", l2model.FIBEntry_DROP)
	commit(t, s, kvscheduler.TxnChange, fwd, drop, loop("a"))
	st := stateOf(s, fwd.Key)
	if st.State != kvscheduler.StatePending || len(st.Missing) != 2 ||
		!strings.Contains(strings.Join(st.Missing, " "), l2plugin.BDMemberKey("bd1", "a")) {
		t.Fatalf("FIB entry without its bridge domain: %s missing %v", st.State, st.Missing)
	}
	commit(t, s, kvscheduler.TxnChange, bdKV2(&l2model.BridgeDomain{Name: "bd1", Forward: true, Learn: true,
		Interfaces: []*l2model.BridgeDomain_Interface{{Name: "a"}}}))
	for _, k := range []string{fwd.Key, drop.Key} {
		if st := stateOf(s, k); st.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s)", k, st.State, st.Error)
		}
	}
	idx, _ := ifp.SwIfIndex("a")
	got := fibEntries(t, e)
	if f := got["02:00:00:00:bb:01"]; f == nil || uint32(f.SwIfIndex) != idx || !f.StaticMac || f.FilterMac {
		t.Fatalf("forward entry in VPP: %+v", f)
	}
	if f := got["02:00:00:00:bb:02"]; f == nil || !f.FilterMac {
		t.Fatalf("drop entry in VPP: %+v", f)
	}

	if rec := commit(t, s, kvscheduler.TxnDownstreamResync); len(rec.Ops) != 0 {
		t.Fatalf("resync of unchanged FIB entries made operations: %+v", rec.Ops)
	}
	// The same entry spelled with upper-case hex is no change.
	up := fibKV("02:00:00:00:bb:01", "a", l2model.FIBEntry_FORWARD)
	up.Value.(*l2model.FIBEntry).PhysAddress = "02:00:00:00:BB:01"
	if rec := commit(t, s, kvscheduler.TxnChange, up); len(rec.Ops) != 0 {
		t.Fatalf("upper-case MAC made operations: %+v", rec.Ops)
	}

	// Taking the interface out of the bridge domain takes the entry back
	// to PENDING and out of VPP.
	commit(t, s, kvscheduler.TxnChange, bdKV2(&l2model.BridgeDomain{Name: "bd1", Forward: true, Learn: true}))
	if st := stateOf(s, fwd.Key); st.State != kvscheduler.StatePending {
		t.Fatalf("FIB entry of a removed member is %s", st.State)
	}
	if f := fibEntries(t, e)["02:00:00:00:bb:01"]; f != nil {
		t.Fatalf("VPP still has %+v", f)
	}
	commit(t, s, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: drop.Key})
	if f := fibEntries(t, e)["02:00:00:00:bb:02"]; f != nil {
		t.Fatalf("deleted drop entry still in VPP: %+v", f)
	}
}

func TestFIBValidation(t *testing.T) {
	d := l2plugin.New(l2plugin.Options{}).FIBDescriptor()
	bad := map[string]*l2model.FIBEntry{
		"no bd":          {PhysAddress: "02:00:00:00:00:01", OutgoingInterface: "a"},
		"forward no if":  {PhysAddress: "02:00:00:00:00:01", BridgeDomain: "bd1"},
		"bad mac":        {PhysAddress: "02:00:00", BridgeDomain: "bd1", OutgoingInterface: "a"},
		"drop bvi":       {PhysAddress: "02:00:00:00:00:01", BridgeDomain: "bd1", Action: l2model.FIBEntry_DROP, BridgedVirtualInterface: true},
		"unknown action": {PhysAddress: "02:00:00:00:00:01", BridgeDomain: "bd1", Action: 7, OutgoingInterface: "a"},
	}
	for what, v := range bad {
		if err := d.Validate("k", v); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
	if err := d.Validate("k", &l2model.FIBEntry{PhysAddress: "02:00:00:00:00:01", BridgeDomain: "bd1", Action: l2model.FIBEntry_DROP}); err != nil {
		t.Errorf("drop entry without interface rejected: %v", err)
	}
	if d.Update != nil {
		t.Error("FIB entries have an Update; VPP's l2fib_add_del cannot move one, a change must recreate")
	}
	deps := d.Dependencies("k", &l2model.FIBEntry{PhysAddress: "02:00:00:00:00:01", BridgeDomain: "bd1", Action: l2model.FIBEntry_DROP, OutgoingInterface: "a"})
	if len(deps) != 1 || deps[0].Key != l2plugin.BridgeDomainKey("bd1") {
		t.Errorf("drop entry depends on %+v, want only its bridge domain", deps)
	}
}
