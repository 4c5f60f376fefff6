package l3plugin

import (
	"strings"
	"testing"

	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
)

func TestValidateRoute(t *testing.T) {
	good := []*l3model.Route{
		{DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100.2"},
		{DstNetwork: "192.0.2.0/24", OutgoingInterface: "lo"},
		{DstNetwork: "2001:db8::/32", NextHopAddr: "2001:db8:1::1", OutgoingInterface: "lo", Weight: 255, Preference: 255},
		{Type: l3model.Route_INTER_VRF, DstNetwork: "192.0.2.0/24", ViaVrfId: 3},
		{Type: l3model.Route_DROP, DstNetwork: "192.0.2.0/24", VrfId: 4},
	}
	for _, r := range good {
		if err := validateRoute("k", r); err != nil {
			t.Errorf("%v rejected: %v", r, err)
		}
	}
	bad := map[string]struct {
		r    *l3model.Route
		want string
	}{
		"no dst":          {&l3model.Route{NextHopAddr: "198.51.100.2"}, "dst_network"},
		"dst no len":      {&l3model.Route{DstNetwork: "192.0.2.0", NextHopAddr: "198.51.100.2"}, "prefix length"},
		"bad hop":         {&l3model.Route{DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100"}, "next_hop_addr"},
		"mixed versions":  {&l3model.Route{DstNetwork: "192.0.2.0/24", NextHopAddr: "2001:db8::1"}, "different IP versions"},
		"nowhere":         {&l3model.Route{DstNetwork: "192.0.2.0/24"}, "needs next_hop_addr or outgoing_interface"},
		"weight":          {&l3model.Route{DstNetwork: "192.0.2.0/24", OutgoingInterface: "lo", Weight: 256}, "weight"},
		"preference":      {&l3model.Route{DstNetwork: "192.0.2.0/24", OutgoingInterface: "lo", Preference: 300}, "preference"},
		"inter with if":   {&l3model.Route{Type: l3model.Route_INTER_VRF, DstNetwork: "192.0.2.0/24", OutgoingInterface: "lo"}, "INTER_VRF"},
		"drop with a hop": {&l3model.Route{Type: l3model.Route_DROP, DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100.2"}, "DROP"},
		"unknown type":    {&l3model.Route{Type: 9, DstNetwork: "192.0.2.0/24"}, "unknown"},
	}
	for what, c := range bad {
		if err := validateRoute("k", c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", what, err, c.want)
		}
	}
}

func TestRouteDependencies(t *testing.T) {
	deps := routeDeps("k", &l3model.Route{VrfId: 10, DstNetwork: "2001:db8::/32", OutgoingInterface: "lo"})
	if len(deps) != 2 || deps[0].Key != "config/vpp/v2/interfaces/lo" || deps[1].Key != "config/vpp/v2/vrf-table/id/10/protocol/IPV6" {
		t.Fatalf("deps %+v", deps)
	}
	deps = routeDeps("k", &l3model.Route{Type: l3model.Route_INTER_VRF, DstNetwork: "192.0.2.0/24", ViaVrfId: 3})
	if len(deps) != 1 || deps[0].Key != "config/vpp/v2/vrf-table/id/3/protocol/IPV4" || deps[0].Label != "via-vrf-table" {
		t.Fatalf("inter-VRF deps %+v", deps)
	}
	if deps := routeDeps("k", &l3model.Route{DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100.1"}); len(deps) != 0 {
		t.Fatalf("a route in VRF 0 via a next hop depends on %+v", deps)
	}
}

func TestRouteEquivalentAndRecreate(t *testing.T) {
	a := &l3model.Route{DstNetwork: "192.0.2.7/24", NextHopAddr: "198.51.100.2"}
	b := &l3model.Route{DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100.2", Weight: 1}
	if !routeEqual(a, b) {
		t.Error("host bits in dst or weight 0 vs 1 made routes differ; VPP sees them alike")
	}
	b.Weight = 2
	if routeEqual(a, b) {
		t.Error("a weight change compared equal")
	}
	if d := (&Plugin{}).RouteDescriptor(); d.Update != nil {
		t.Error("routes have an Update; VPP cannot change a path in place, a change must recreate")
	}
}

func TestValidateVrfAndUpdateKinds(t *testing.T) {
	if err := validateVrf(VrfKey(10, false), &l3model.VrfTable{Id: 10, Label: "blue"}); err != nil {
		t.Fatal(err)
	}
	if err := validateVrf(VrfKey(10, false), &l3model.VrfTable{Id: 11}); err == nil {
		t.Error("a table under another table's key was accepted")
	}
	if err := validateVrf(VrfKey(1, true), &l3model.VrfTable{Id: 1, Protocol: l3model.VrfTable_IPV6, Label: strings.Repeat("x", 64)}); err == nil {
		t.Error("a 64-byte label was accepted")
	}
	d := (&Plugin{}).VrfDescriptor()
	a := &l3model.VrfTable{Id: 1, Label: "a"}
	if !d.UpdateWithRecreate("k", a, &l3model.VrfTable{Id: 1, Label: "b"}, struct{}{}) {
		t.Error("a label change does not recreate (VPP keeps a table's first name)")
	}
	fh := &l3model.VrfTable{Id: 1, Label: "a", FlowHashSettings: &l3model.VrfTable_FlowHashSettings{UseDstIp: true}}
	if d.UpdateWithRecreate("k", a, fh, struct{}{}) || d.Equivalent("k", a, fh) {
		t.Error("a flow-hash change must be an in-place update")
	}
	def := &l3model.VrfTable{Id: 1, Label: "a", FlowHashSettings: defaultFlowHash()}
	if !d.Equivalent("k", a, def) {
		t.Error("explicit default flow-hash settings differ from none")
	}
}

func TestValidateArp(t *testing.T) {
	if err := validateArp("k", &l3model.ARPEntry{Interface: "lo", IpAddress: "2001:db8::5", PhysAddress: "02:00:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]*l3model.ARPEntry{
		"no interface": {IpAddress: "198.51.100.1", PhysAddress: "02:00:00:00:00:01"},
		"bad ip":       {Interface: "lo", IpAddress: "198.51.100.1/24", PhysAddress: "02:00:00:00:00:01"},
		"no mac":       {Interface: "lo", IpAddress: "198.51.100.1"},
		"bad mac":      {Interface: "lo", IpAddress: "198.51.100.1", PhysAddress: "02:00"},
	} {
		if err := validateArp("k", v); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
	if normArp(&l3model.ARPEntry{Interface: "lo", IpAddress: "198.51.100.1", PhysAddress: "02:AA:00:00:00:01"}) !=
		normArp(&l3model.ARPEntry{Interface: "lo", IpAddress: "198.51.100.1", PhysAddress: "02:aa:00:00:00:01"}) {
		t.Error("MAC case made ARP entries differ")
	}
}

func TestValidateProxyARP(t *testing.T) {
	ok := &l3model.ProxyARP{Interfaces: []*l3model.ProxyARP_Interface{{Name: "a"}},
		Ranges: []*l3model.ProxyARP_Range{{FirstIpAddr: "198.51.100.1", LastIpAddr: "198.51.100.1", VrfId: 3}}}
	if err := validateProxyARP(ProxyARPKey, ok); err != nil {
		t.Fatal(err)
	}
	if err := validateProxyARP(ProxyARPPrefix+"other", ok); err == nil {
		t.Error("proxy ARP under a key other than .../settings accepted")
	}
	bad := map[string]*l3model.ProxyARP{
		"reversed": {Ranges: []*l3model.ProxyARP_Range{{FirstIpAddr: "198.51.100.9", LastIpAddr: "198.51.100.1"}}},
		"ipv6":     {Ranges: []*l3model.ProxyARP_Range{{FirstIpAddr: "2001:db8::1", LastIpAddr: "2001:db8::2"}}},
		"twice":    {Ranges: []*l3model.ProxyARP_Range{{FirstIpAddr: "198.51.100.1", LastIpAddr: "198.51.100.2"}, {FirstIpAddr: "198.51.100.1", LastIpAddr: "198.51.100.2"}}},
		"no name":  {Interfaces: []*l3model.ProxyARP_Interface{{}}},
		"dup name": {Interfaces: []*l3model.ProxyARP_Interface{{Name: "a"}, {Name: "a"}}},
	}
	for what, v := range bad {
		if err := validateProxyARP(ProxyARPKey, v); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
	deps := (&Plugin{}).ProxyARPDescriptor().Dependencies(ProxyARPKey, ok)
	if len(deps) != 1 || deps[0].Key != VrfKey(3, false) {
		t.Errorf("deps %+v, want the VRF 3 table", deps)
	}
}
