package ifplugin

import (
	"errors"
	"strings"
	"testing"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

func vxlanIf(l *ifmodel.VxlanLink) *ifmodel.Interface {
	return &ifmodel.Interface{Name: "vx", Type: ifmodel.Interface_VXLAN_TUNNEL, Link: &ifmodel.Interface_Vxlan{Vxlan: l}}
}

func TestValidateVxlan(t *testing.T) {
	p, _ := newTestPlugin(t)
	for _, c := range []struct {
		name string
		link *ifmodel.VxlanLink
		want string // "" = valid
		ns   bool   // ErrNotSupported
	}{
		{"src address", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1}, "", false},
		{"src interface", &ifmodel.VxlanLink{SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 16777215}, "", false},
		{"vni too big", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1 << 24}, "out of range", false},
		{"no source", &ifmodel.VxlanLink{DstAddress: "198.51.100.2", Vni: 1}, "needs src_address or src_interface", false},
		{"both sources", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 1}, "not both", false},
		{"bad dst", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "nowhere", Vni: 1}, "dst_address", false},
		{"multicast dst", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "239.1.1.1", Vni: 1}, "not a unicast", false},
		{"same", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.1", Vni: 1}, "are the same", false},
		{"families", &ifmodel.VxlanLink{SrcAddress: "2001:db8::1", DstAddress: "198.51.100.1", Vni: 1}, "different families", false},
		{"self", &ifmodel.VxlanLink{SrcInterface: "vx", DstAddress: "198.51.100.2", Vni: 1}, "tunnel itself", false},
		{"gpe", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1, Gpe: &ifmodel.VxlanLink_Gpe{}}, "gpe", true},
		{"multicast", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1, Multicast: "up0"}, "multicast", true},
		{"vrf", &ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1, IpVrf: 3}, "VRF", true},
	} {
		err := p.validate("k", vxlanIf(c.link))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		case c.ns && !errors.Is(err, ErrNotSupported):
			t.Errorf("%s: %v is not ErrNotSupported", c.name, err)
		}
	}
	if err := p.validate("k", &ifmodel.Interface{Name: "vx", Type: ifmodel.Interface_VXLAN_TUNNEL}); err == nil {
		t.Error("VXLAN_TUNNEL without a vxlan link is valid")
	}
	deps := p.vxlanDependencies("k", vxlanIf(&ifmodel.VxlanLink{SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 1}))
	if len(deps) != 1 || deps[0].Key != Key("up0") {
		t.Errorf("dependencies %+v, want the source interface", deps)
	}
	if deps := p.vxlanDependencies("k", vxlanIf(&ifmodel.VxlanLink{SrcAddress: "198.51.100.1", DstAddress: "198.51.100.2", Vni: 1})); len(deps) != 0 {
		t.Errorf("dependencies with src_address: %+v, want none", deps)
	}
}

func TestUpdateWithRecreateVxlan(t *testing.T) {
	p, _ := newTestPlugin(t)
	a := vxlanIf(&ifmodel.VxlanLink{SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 1})
	b := vxlanIf(&ifmodel.VxlanLink{SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 2})
	if !p.updateWithRecreate("k", a, b, nil) {
		t.Error("a VNI change does not recreate the tunnel")
	}
	c := vxlanIf(&ifmodel.VxlanLink{SrcInterface: "up0", DstAddress: "198.51.100.2", Vni: 1})
	c.Mtu = 1400
	if p.updateWithRecreate("k", a, c, nil) {
		t.Error("an MTU change recreates the tunnel")
	}
}
