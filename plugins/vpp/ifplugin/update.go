package ifplugin

import (
	"context"
	"fmt"
	"time"

	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vhost_user"
	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

func nowUnix() int64 { return time.Now().Unix() }

// updateWithRecreate: VPP cannot change an interface's type or most link
// parameters in place; vhost-user is the exception (modify_vhost_user_if).
func (p *Plugin) updateWithRecreate(_ string, old, new *ifmodel.Interface, _ *Metadata) bool {
	if old.GetType() != new.GetType() {
		return true
	}
	// A VRF change moves every address; VPP takes set_table only on an
	// interface without addresses, so the interface is rebuilt.
	if old.GetVrf() != new.GetVrf() {
		return true
	}
	if o4, o6 := vrfFamilies(old); new.GetVrf() != 0 {
		if n4, n6 := vrfFamilies(new); o4 != n4 || o6 != n6 {
			return true
		}
	}
	o, n := p.normalize(old), p.normalize(new)
	if new.GetType() == ifmodel.Interface_VHOST_USER {
		ol, nl := o.GetVhostUser(), n.GetVhostUser()
		return ol.GetDisableMrgRxbuf() != nl.GetDisableMrgRxbuf() || ol.GetDisableIndirectDesc() != nl.GetDisableIndirectDesc()
	}
	var ol, nl proto.Message
	switch new.GetType() {
	case ifmodel.Interface_SUB_INTERFACE:
		ol, nl = o.GetSub(), n.GetSub()
	case ifmodel.Interface_MEMIF:
		ol, nl = o.GetMemif(), n.GetMemif()
	case ifmodel.Interface_TAP:
		ol, nl = o.GetTap(), n.GetTap()
	case ifmodel.Interface_AF_PACKET:
		ol, nl = o.GetAfpacket(), n.GetAfpacket()
	default:
		return false
	}
	return !proto.Equal(ol, nl)
}

func (p *Plugin) update(ctx context.Context, key string, old, new *ifmodel.Interface, meta *Metadata) (*Metadata, error) {
	if meta == nil {
		return nil, fmt.Errorf("%s: no metadata (sw_if_index unknown)", key)
	}
	idx := interface_types.InterfaceIndex(meta.SwIfIndex)
	if new.GetType() == ifmodel.Interface_VHOST_USER && !proto.Equal(old.GetVhostUser(), new.GetVhostUser()) {
		l := new.GetVhostUser()
		if _, err := p.vhost.ModifyVhostUserIfV2(ctx, &vhost_user.ModifyVhostUserIfV2{
			SwIfIndex: idx, IsServer: l.GetServer(), SockFilename: l.GetSocketFilename(),
			EnableGso: l.GetEnableGso(), EnablePacked: l.GetEnablePacked(), EnableEventIdx: l.GetEnableEventIdx(),
		}); err != nil {
			return nil, fmt.Errorf("%s: modify_vhost_user_if_v2: %w", key, err)
		}
	}
	if mac := new.GetPhysAddress(); mac != "" && !sameMAC(mac, old.GetPhysAddress()) {
		hw, err := ethernet_types.ParseMacAddress(mac)
		if err != nil {
			return nil, fmt.Errorf("%s: phys_address: %w", key, err)
		}
		if _, err := p.ifs.SwInterfaceSetMacAddress(ctx, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: idx, MacAddress: hw}); err != nil {
			return nil, fmt.Errorf("%s: sw_interface_set_mac_address: %w", key, err)
		}
		p.forgetDetails(meta.SwIfIndex)
	}
	if new.GetMtu() != 0 && new.GetMtu() != old.GetMtu() {
		if err := p.setMtu(ctx, key, idx, new.GetMtu()); err != nil {
			return nil, err
		}
	}
	if err := p.setAddresses(ctx, key, idx, old.GetIpAddresses(), new.GetIpAddresses()); err != nil {
		return nil, err
	}
	if old.GetEnabled() != new.GetEnabled() {
		if err := p.setEnabled(ctx, key, idx, new.GetEnabled()); err != nil {
			return nil, err
		}
	}
	if new.GetType() == ifmodel.Interface_MEMIF {
		p.setMemifOwner(new.GetName(), p.memifKeyOf(new.GetMemif()))
	}
	return meta, nil
}

func sameMAC(a, b string) bool {
	ha, errA := ethernet_types.ParseMacAddress(a)
	hb, errB := ethernet_types.ParseMacAddress(b)
	return errA == nil && errB == nil && ha == hb
}

func mtuRequest(idx interface_types.InterfaceIndex, mtu uint32) *interfaces.SwInterfaceSetMtu {
	// Index 0 is the L3 (all protocols) MTU; zeros leave the per-protocol
	// MTUs following it.
	return &interfaces.SwInterfaceSetMtu{SwIfIndex: idx, Mtu: []uint32{mtu, 0, 0, 0}}
}

func (p *Plugin) setMtu(ctx context.Context, key string, idx interface_types.InterfaceIndex, mtu uint32) error {
	if _, err := p.ifs.SwInterfaceSetMtu(ctx, mtuRequest(idx, mtu)); err != nil {
		return fmt.Errorf("%s: sw_interface_set_mtu %d: %w", key, mtu, err)
	}
	p.setCachedMtu(uint32(idx), mtu)
	return nil
}

func (p *Plugin) setEnabled(ctx context.Context, key string, idx interface_types.InterfaceIndex, up bool) error {
	var flags interface_types.IfStatusFlags
	if up {
		flags = interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	}
	if _, err := p.ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: idx, Flags: flags}); err != nil {
		return fmt.Errorf("%s: sw_interface_set_flags admin_up=%v: %w", key, up, err)
	}
	return nil
}

// setAddresses removes addresses in old but not in new, then adds the rest.
func (p *Plugin) setAddresses(ctx context.Context, key string, idx interface_types.InterfaceIndex, old, new []string) error {
	o, n := canonicalPrefixes(old), canonicalPrefixes(new)
	in := func(s []string, x string) bool {
		for _, y := range s {
			if y == x {
				return true
			}
		}
		return false
	}
	for _, a := range o {
		if !in(n, a) {
			if err := p.addDelAddress(ctx, key, idx, a, false); err != nil {
				return err
			}
		}
	}
	for _, a := range n {
		if !in(o, a) {
			if err := p.addDelAddress(ctx, key, idx, a, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Plugin) addDelAddress(ctx context.Context, key string, idx interface_types.InterfaceIndex, addr string, add bool) error {
	pf, err := ip_types.ParseAddressWithPrefix(addr)
	if err != nil {
		return fmt.Errorf("%s: ip address %q: %w", key, addr, err)
	}
	if _, err := p.ifs.SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: idx, IsAdd: add, Prefix: pf}); err != nil {
		return fmt.Errorf("%s: sw_interface_add_del_address %s add=%v: %w", key, addr, add, err)
	}
	return nil
}
