package ifplugin

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// VXLAN_TUNNEL interfaces. VPP keys a tunnel by (source, destination, VNI,
// encap VRF) and deletes by that key, not by sw_if_index; it creates the
// tunnel admin-up. Behaviour of VPP 25.10 this file relies on:
//   - decap_next_index ~0 means l2-input (dumped as 1); 0 would be error-drop.
//   - src_port/dst_port 0 mean 4789 (dumped as 4789).
//   - the same key twice: retval -75 (tunnel already exists); deleting an
//     unknown key: -6 (no such entry); source = destination: -82; mixed
//     address families: -7.
//   - VNIs are not range-checked: 1<<24 is accepted and aliases VNI 0, so the
//     24-bit range is checked here.

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// vxlanKey is one tunnel's identity on a VPP; src is the address, or the
// source interface's name when the address comes from it.
type vxlanKey struct {
	src, dst string
	vni      uint32
}

func vxlanKeyOf(l *ifmodel.VxlanLink) vxlanKey {
	src := l.GetSrcAddress()
	if l.GetSrcInterface() != "" {
		src = "if:" + l.GetSrcInterface()
	}
	return vxlanKey{src: src, dst: l.GetDstAddress(), vni: l.GetVni()}
}

// validateVxlan checks a VXLAN_TUNNEL link; v's type is VXLAN_TUNNEL.
func validateVxlan(v *ifmodel.Interface) error {
	l := v.GetVxlan()
	if l == nil {
		return fmt.Errorf("vxlan_tunnel needs the vxlan link")
	}
	switch {
	case l.GetGpe() != nil:
		return fmt.Errorf("vxlan gpe is %w", ErrNotSupported)
	case l.GetMulticast() != "":
		return fmt.Errorf("vxlan multicast is %w", ErrNotSupported)
	case l.GetIpVrf() != 0:
		return fmt.Errorf("vxlan ip_vrf %d: non-default VRF is %w", l.GetIpVrf(), ErrNotSupported)
	case l.GetVni() > MaxVNI:
		return fmt.Errorf("vxlan vni %d is out of range (0..%d)", l.GetVni(), MaxVNI)
	case l.GetSrcAddress() != "" && l.GetSrcInterface() != "":
		return fmt.Errorf("vxlan needs one of src_address and src_interface, not both")
	case l.GetSrcAddress() == "" && l.GetSrcInterface() == "":
		return fmt.Errorf("vxlan needs src_address or src_interface")
	case len(l.GetSrcInterface()) > MaxNameLen:
		return fmt.Errorf("vxlan src_interface is longer than %d bytes", MaxNameLen)
	case l.GetSrcInterface() == v.GetName():
		return fmt.Errorf("vxlan src_interface names the tunnel itself")
	}
	dst, err := netip.ParseAddr(l.GetDstAddress())
	if err != nil {
		return fmt.Errorf("vxlan dst_address %q: %w", l.GetDstAddress(), err)
	}
	if dst.Zone() != "" || dst.IsUnspecified() || dst.IsMulticast() {
		return fmt.Errorf("vxlan dst_address %s is not a unicast address", dst)
	}
	if l.GetSrcAddress() != "" {
		src, err := netip.ParseAddr(l.GetSrcAddress())
		if err != nil {
			return fmt.Errorf("vxlan src_address %q: %w", l.GetSrcAddress(), err)
		}
		switch {
		case src.Is4() != dst.Is4():
			return fmt.Errorf("vxlan src_address %s and dst_address %s are of different families", src, dst)
		case src == dst:
			return fmt.Errorf("vxlan src_address and dst_address are the same (%s)", src)
		}
	}
	return nil
}

// vxlanDependencies: a tunnel taking its source from an interface waits for it.
func (p *Plugin) vxlanDependencies(_ string, v *ifmodel.Interface) []kvscheduler.Dependency {
	if v.GetType() != ifmodel.Interface_VXLAN_TUNNEL || v.GetVxlan().GetSrcInterface() == "" {
		return nil
	}
	return []kvscheduler.Dependency{{Label: "vxlan-src-interface", Key: Key(v.GetVxlan().GetSrcInterface())}}
}

// vxlanSource resolves a tunnel's source address: src_address, or the first
// address of src_interface of dst's family (as the agent configured it).
func (p *Plugin) vxlanSource(l *ifmodel.VxlanLink, dst netip.Addr) (netip.Addr, error) {
	if l.GetSrcAddress() != "" {
		return netip.ParseAddr(l.GetSrcAddress())
	}
	name := l.GetSrcInterface()
	p.mu.RLock()
	e, ok := p.byName[name]
	var addrs []string
	if ok {
		addrs = e.addrs
	}
	p.mu.RUnlock()
	if !ok {
		return netip.Addr{}, fmt.Errorf("vxlan src_interface %q does not exist", name)
	}
	for _, a := range addrs {
		if pf, err := netip.ParsePrefix(a); err == nil && pf.Addr().Is4() == dst.Is4() {
			return pf.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("vxlan src_interface %q has no %s address", name, family(dst))
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func (p *Plugin) createVxlan(ctx context.Context, key string, v *ifmodel.Interface, meta *Metadata) error {
	l := v.GetVxlan()
	k := vxlanKeyOf(l)
	p.mu.RLock()
	other, taken := p.vxlanOwner[k]
	p.mu.RUnlock()
	if taken && other != v.GetName() {
		return fmt.Errorf("%s: vxlan vni %d to %s from %s is already used by interface %q", key, k.vni, k.dst, k.src, other)
	}
	dst, err := netip.ParseAddr(l.GetDstAddress())
	if err != nil {
		return fmt.Errorf("%s: vxlan dst_address: %w", key, err)
	}
	src, err := p.vxlanSource(l, dst)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if src == dst {
		return fmt.Errorf("%s: vxlan source and destination are the same (%s)", key, src)
	}
	req := &vxlan.VxlanAddDelTunnelV3{
		IsAdd:          true,
		Instance:       ^uint32(0),
		SrcAddress:     ip_types.NewAddress(src.AsSlice()),
		DstAddress:     ip_types.NewAddress(dst.AsSlice()),
		DecapNextIndex: ^uint32(0), // l2-input
		Vni:            l.GetVni(),
	}
	r, err := p.vx.VxlanAddDelTunnelV3(ctx, req)
	if isVPPError(err) {
		// An untagged tunnel with this key (see stray.go) is deleted and
		// the create tried again.
		if stray, ok := p.strayVxlan(ctx, v.GetName(), req); ok {
			p.log.Warn("deleting an untagged VXLAN tunnel in the way of a desired one", "key", key, "sw_if_index", uint32(stray), "vni", l.GetVni())
			del := *req
			del.IsAdd = false
			if _, derr := p.vx.VxlanAddDelTunnelV3(ctx, &del); derr != nil {
				err = fmt.Errorf("%w (deleting untagged tunnel sw_if_index %d in the way: %w)", err, stray, derr)
			} else {
				r, err = p.vx.VxlanAddDelTunnelV3(ctx, req)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s: vxlan_add_del_tunnel_v3 (%s → %s vni %d): %w", key, src, dst, l.GetVni(), err)
	}
	meta.SwIfIndex, meta.VxlanSrc = uint32(r.SwIfIndex), src.String()
	return nil
}

func (p *Plugin) deleteVxlan(ctx context.Context, key string, v *ifmodel.Interface, meta *Metadata) error {
	l := v.GetVxlan()
	src, err := netip.ParseAddr(meta.VxlanSrc)
	if err != nil {
		return fmt.Errorf("%s: vxlan source address unknown (metadata %q)", key, meta.VxlanSrc)
	}
	dst, err := netip.ParseAddr(l.GetDstAddress())
	if err != nil {
		return fmt.Errorf("%s: vxlan dst_address: %w", key, err)
	}
	if _, err := p.vx.VxlanAddDelTunnelV3(ctx, &vxlan.VxlanAddDelTunnelV3{
		SrcAddress: ip_types.NewAddress(src.AsSlice()),
		DstAddress: ip_types.NewAddress(dst.AsSlice()),
		Vni:        l.GetVni(),
	}); err != nil {
		return fmt.Errorf("%s: vxlan_add_del_tunnel_v3 delete (%s → %s vni %d): %w", key, src, dst, l.GetVni(), err)
	}
	return nil
}

// sourceInUse refuses to remove an address of name that a VXLAN tunnel
// created from src_interface uses as its source: the tunnel would keep
// sending from an address the node no longer has. The update fails (and is
// retried) until the tunnels are deleted or changed.
func (p *Plugin) sourceInUse(name string, old, new []string) error {
	kept := map[netip.Addr]bool{}
	for _, a := range new {
		if pf, err := netip.ParsePrefix(a); err == nil {
			kept[pf.Addr()] = true
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	var users []string
	for tun, k := range p.vxlanOf {
		if k.src != "if:"+name {
			continue
		}
		e := p.byName[tun]
		if e == nil {
			continue
		}
		if src, err := netip.ParseAddr(e.meta.VxlanSrc); err == nil && !kept[src] {
			users = append(users, fmt.Sprintf("%s (source %s)", tun, src))
		}
	}
	if len(users) == 0 {
		return nil
	}
	sort.Strings(users)
	return fmt.Errorf("an address VXLAN tunnels use as their source cannot be removed: %s; delete or change them first", strings.Join(users, ", "))
}

// strayVxlan returns the untagged (or already ours) tunnel with req's key.
func (p *Plugin) strayVxlan(ctx context.Context, name string, req *vxlan.VxlanAddDelTunnelV3) (interface_types.InterfaceIndex, bool) {
	all, err := p.dumpVxlan(ctx)
	if err != nil {
		return 0, false
	}
	for _, d := range all {
		if d.SrcAddress == req.SrcAddress && d.DstAddress == req.DstAddress && d.Vni == req.Vni && d.EncapVrfID == req.EncapVrfID {
			return d.SwIfIndex, p.adoptable(ctx, d.SwIfIndex, name)
		}
	}
	return 0, false
}

// setVxlanOwner records that name's tunnel uses k.
func (p *Plugin) setVxlanOwner(name string, k vxlanKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.vxlanOf[name]; ok && old != k && p.vxlanOwner[old] == name {
		delete(p.vxlanOwner, old)
	}
	p.vxlanOwner[k] = name
	p.vxlanOf[name] = k
}

// setAddrs records the addresses the agent configured on an interface, for
// tunnels that take their source from it.
func (p *Plugin) setAddrs(name string, addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.byName[name]; ok {
		e.addrs = canonicalPrefixes(addrs)
	}
}

// dumpVxlan reads every VXLAN tunnel, by sw_if_index. A VPP without the
// vxlan plugin has none (it answers the dump with "unknown message").
func (p *Plugin) dumpVxlan(ctx context.Context) (map[uint32]*vxlan.VxlanTunnelV2Details, error) {
	s, err := p.vx.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		if missingPlugin(err) {
			return map[uint32]*vxlan.VxlanTunnelV2Details{}, nil
		}
		return nil, fmt.Errorf("vxlan_tunnel_v2_dump: %w", err)
	}
	ds, err := recv("vxlan_tunnel_v2_dump", s.Recv)
	if err != nil {
		if missingPlugin(err) {
			return map[uint32]*vxlan.VxlanTunnelV2Details{}, nil
		}
		return nil, err
	}
	out := make(map[uint32]*vxlan.VxlanTunnelV2Details, len(ds))
	for _, d := range ds {
		out[uint32(d.SwIfIndex)] = d
	}
	return out, nil
}

// vxlanValue is the link a dumped tunnel maps back to.
func vxlanValue(d *vxlan.VxlanTunnelV2Details) *ifmodel.VxlanLink {
	return &ifmodel.VxlanLink{SrcAddress: d.SrcAddress.String(), DstAddress: d.DstAddress.String(), Vni: d.Vni, IpVrf: d.EncapVrfID}
}

// fillVxlan makes a retrieved tunnel compare equal to a desired one that
// names its source interface instead of an address.
func fillVxlan(got, want *ifmodel.VxlanLink) {
	if want.GetSrcInterface() != "" && got.GetSrcAddress() != "" {
		got.SrcInterface, got.SrcAddress = want.GetSrcInterface(), ""
	}
}
