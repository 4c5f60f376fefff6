package ifplugin

import (
	"reflect"
	"testing"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

func TestDependenciesSubAndVrf(t *testing.T) {
	p, _ := newTestPlugin(t)
	sub := &ifmodel.Interface{Name: "s", Type: ifmodel.Interface_SUB_INTERFACE, Vrf: 7,
		IpAddresses: []string{"198.51.100.1/24", "2001:db8::1/64"},
		Link:        &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "trunk", SubId: 7}}}
	got := p.dependencies("k", sub)
	want := []kvscheduler.Dependency{
		{Label: "parent-interface", Key: "config/vpp/v2/interfaces/trunk"},
		{Label: "vrf-table-ipv4", Key: "config/vpp/v2/vrf-table/id/7/protocol/IPV4"},
		{Label: "vrf-table-ipv6", Key: "config/vpp/v2/vrf-table/id/7/protocol/IPV6"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dependencies %+v, want %+v", got, want)
	}
	// No address: the vrf is the IPv4 table's; vrf 0 needs no table.
	lo := &ifmodel.Interface{Name: "l", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Vrf: 3}
	if d := p.dependencies("k", lo); len(d) != 1 || d[0].Key != VrfTableKey(3, false) {
		t.Fatalf("loopback in vrf 3: %+v", d)
	}
	lo.Vrf = 0
	if d := p.dependencies("k", lo); len(d) != 0 {
		t.Fatalf("vrf 0 depends on %+v", d)
	}
}

func TestDerivedUnnumbered(t *testing.T) {
	p, _ := newTestPlugin(t)
	v := &ifmodel.Interface{Name: "u", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Unnumbered: &ifmodel.Interface_Unnumbered{InterfaceWithIp: "lo"}}
	d := p.derived("k", v)
	if len(d) != 1 || d[0].Key != "vpp/interface/unnumbered/u" || d[0].Value.(*ifmodel.Interface_Unnumbered).GetInterfaceWithIp() != "lo" {
		t.Fatalf("derived %+v", d)
	}
	deps := p.UnnumberedDescriptor().Dependencies(d[0].Key, d[0].Value.(*ifmodel.Interface_Unnumbered))
	if len(deps) != 1 || deps[0].Key != Key("lo") {
		t.Fatalf("unnumbered waits for %+v, want the interface with the address", deps)
	}
	if err := p.UnnumberedDescriptor().Validate("vpp/interface/unnumbered/lo", &ifmodel.Interface_Unnumbered{InterfaceWithIp: "lo"}); err == nil {
		t.Fatal("an interface borrowing from itself was accepted")
	}
	v.Unnumbered = nil
	if d := p.derived("k", v); len(d) != 0 {
		t.Fatalf("derived without unnumbered: %+v", d)
	}
}

func TestUpdateWithRecreateVrfAndSub(t *testing.T) {
	p, _ := newTestPlugin(t)
	lo := func(vrf uint32, addrs ...string) *ifmodel.Interface {
		return &ifmodel.Interface{Name: "l", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Vrf: vrf, IpAddresses: addrs}
	}
	if !p.updateWithRecreate("k", lo(0), lo(5), nil) {
		t.Error("vrf change does not recreate (VPP refuses set_table with addresses)")
	}
	if p.updateWithRecreate("k", lo(5, "198.51.100.1/24"), lo(5, "198.51.100.2/24"), nil) {
		t.Error("an address change inside a vrf recreates")
	}
	if !p.updateWithRecreate("k", lo(5, "198.51.100.1/24"), lo(5, "2001:db8::1/64"), nil) {
		t.Error("moving a vrf interface from IPv4 to IPv6 only does not recreate")
	}
	rx := lo(0)
	rx.RxModes = []*ifmodel.Interface_RxMode{{Mode: ifmodel.Interface_RxMode_POLLING}}
	if p.updateWithRecreate("k", lo(0), rx, nil) {
		t.Error("an rx mode change recreates; it is set in place")
	}
	sub := func(id uint32, rw ifmodel.SubInterface_TagRewriteOptions) *ifmodel.Interface {
		return &ifmodel.Interface{Name: "s", Type: ifmodel.Interface_SUB_INTERFACE, Enabled: true,
			Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: id, TagRwOption: rw}}}
	}
	if !p.updateWithRecreate("k", sub(10, 0), sub(11, 0), nil) {
		t.Error("sub_id change does not recreate")
	}
	if !p.updateWithRecreate("k", sub(10, 0), sub(10, ifmodel.SubInterface_POP1), nil) {
		t.Error("tag rewrite change does not recreate")
	}
	down := sub(10, 0)
	down.Enabled = false
	if p.updateWithRecreate("k", sub(10, 0), down, nil) {
		t.Error("admin state change of a sub-interface recreates")
	}
}

func TestConfigureRequestsOrder(t *testing.T) {
	v := &ifmodel.Interface{Name: "s", Type: ifmodel.Interface_SUB_INTERFACE, Vrf: 4, IpAddresses: []string{"198.51.100.1/24"},
		Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: 4, TagRwOption: ifmodel.SubInterface_PUSH1, PushDot1Q: true, Tag1: 20}}}
	tr := tagRewriteRequest(3, v.GetSub()).(*l2.L2InterfaceVlanTagRewrite)
	if tr.VtrOp != 1 || tr.PushDot1q != 1 || tr.Tag1 != 20 || tr.SwIfIndex != 3 {
		t.Fatalf("tag rewrite %+v", tr)
	}
	if tagRewriteRequest(3, &ifmodel.SubInterface{}) != nil {
		t.Fatal("DISABLED tag rewrite sends a request")
	}
	tbl := tableRequests(3, v)
	if len(tbl) != 1 || tbl[0].(*interfaces.SwInterfaceSetTable).VrfID != 4 || tbl[0].(*interfaces.SwInterfaceSetTable).IsIPv6 {
		t.Fatalf("table requests %+v", tbl)
	}
	modes := rxModeRequests(3, []*ifmodel.Interface_RxMode{{Queue: 2, Mode: ifmodel.Interface_RxMode_INTERRUPT}, {DefaultMode: true, Mode: ifmodel.Interface_RxMode_POLLING}})
	q := modes[0].(*interfaces.SwInterfaceSetRxMode)
	all := modes[1].(*interfaces.SwInterfaceSetRxMode)
	if !q.QueueIDValid || q.QueueID != 2 || q.Mode != interface_types.RX_MODE_API_INTERRUPT || all.QueueIDValid || all.Mode != interface_types.RX_MODE_API_POLLING {
		t.Fatalf("rx mode requests %+v %+v", q, all)
	}
	reset := rxModesReset(3, []*ifmodel.Interface_RxMode{{Queue: 2, Mode: ifmodel.Interface_RxMode_INTERRUPT}, {Queue: 1, Mode: ifmodel.Interface_RxMode_POLLING}},
		[]*ifmodel.Interface_RxMode{{Queue: 1, Mode: ifmodel.Interface_RxMode_INTERRUPT}})
	if len(reset) != 1 || reset[0].(*interfaces.SwInterfaceSetRxMode).QueueID != 2 || reset[0].(*interfaces.SwInterfaceSetRxMode).Mode != interface_types.RX_MODE_API_DEFAULT {
		t.Fatalf("a dropped queue mode is not reset to DEFAULT: %+v", reset)
	}
}
