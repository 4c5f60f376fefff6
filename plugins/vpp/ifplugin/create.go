package ifplugin

import (
	"context"
	"fmt"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

func (p *Plugin) create(ctx context.Context, key string, v *ifmodel.Interface) (*Metadata, error) {
	if v.GetType() == ifmodel.Interface_MEMIF {
		release, err := p.reserveMemif(key)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	meta, err := p.createLink(ctx, key, v)
	if err != nil {
		return nil, err
	}
	idx := interface_types.InterfaceIndex(meta.SwIfIndex)
	// VPP reuses freed indexes: what is cached under this one is stale.
	p.forgetDetails(meta.SwIfIndex)
	p.forgetPublished(meta.SwIfIndex)
	// Indexed before configuring, so that the interface event VPP sends for
	// the admin-up below already maps to the name.
	p.index(v.GetName(), v.GetType(), *meta)
	// From here on the interface exists: if configuring it fails, remove it
	// again so a retry starts clean rather than leaking an untagged one.
	if err := p.configure(ctx, key, idx, v); err != nil {
		if derr := p.deleteLink(ctx, key, v, meta); derr != nil {
			p.log.Warn("cleanup after failed create failed", "key", key, "error", derr)
		}
		p.unindex(v.GetName())
		return nil, err
	}
	if v.GetType() == ifmodel.Interface_MEMIF {
		p.setMemifOwner(v.GetName(), p.memifKeyOf(v.GetMemif()))
	}
	if v.GetType() == ifmodel.Interface_VXLAN_TUNNEL {
		p.setVxlanOwner(v.GetName(), vxlanKeyOf(v.GetVxlan()))
	}
	p.setAddrs(v.GetName(), v.GetIpAddresses())
	p.log.Info("interface created", "key", key, "type", v.GetType().String(), "sw_if_index", meta.SwIfIndex)
	return meta, nil
}

// configure applies what every interface type shares after creation. The
// calls are independent, so they go out together on one stream and VPP's
// in-order replies are read afterwards: one round trip instead of one per
// call. Calls that would change nothing (MTU 0, no address, admin down on
// a new interface) are not sent.
func (p *Plugin) configure(ctx context.Context, key string, idx interface_types.InterfaceIndex, v *ifmodel.Interface) error {
	reqs := []api.Message{&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: idx, Tag: v.GetName()}}
	if v.GetType() == ifmodel.Interface_SUB_INTERFACE {
		if r := tagRewriteRequest(idx, v.GetSub()); r != nil {
			reqs = append(reqs, r)
		}
	}
	reqs = append(reqs, tableRequests(idx, v)...) // before any address
	if v.GetMtu() != 0 {
		reqs = append(reqs, mtuRequest(idx, v.GetMtu()))
	}
	for _, a := range canonicalPrefixes(v.GetIpAddresses()) {
		pf, err := ip_types.ParseAddressWithPrefix(a)
		if err != nil {
			return fmt.Errorf("%s: ip address %q: %w", key, a, err)
		}
		reqs = append(reqs, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: idx, IsAdd: true, Prefix: pf})
	}
	switch {
	case v.GetEnabled():
		reqs = append(reqs, &interfaces.SwInterfaceSetFlags{SwIfIndex: idx, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
	case v.GetType() == ifmodel.Interface_VXLAN_TUNNEL:
		// VPP creates VXLAN tunnels admin up.
		reqs = append(reqs, &interfaces.SwInterfaceSetFlags{SwIfIndex: idx})
	}
	if err := p.pipeline(ctx, reqs); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if v.GetMtu() != 0 {
		p.setCachedMtu(uint32(idx), v.GetMtu())
	}
	return nil
}

// pipeline sends reqs on one stream without waiting, then reads one reply
// per request in order. Every request is answered even after one fails
// (VPP does not stop); the first failure is returned, naming its message.
func (p *Plugin) pipeline(ctx context.Context, reqs []api.Message) error {
	if len(reqs) == 0 {
		return nil
	}
	st, err := p.conn.NewStream(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", reqs[0].GetMessageName(), err)
	}
	defer st.Close()
	for i, r := range reqs {
		if err := st.SendMsg(r); err != nil {
			// Replies to what was sent stay unread; closing the stream
			// releases its channel and govpp drops them.
			return fmt.Errorf("%s (request %d of %d): %w", r.GetMessageName(), i+1, len(reqs), err)
		}
	}
	var first error
	for _, r := range reqs {
		rep, err := st.RecvMsg()
		if err != nil {
			return fmt.Errorf("%s: %w", r.GetMessageName(), err)
		}
		if err := api.RetvalToVPPApiError(retvalOf(rep)); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", r.GetMessageName(), err)
		}
	}
	return first
}

// retvalOf reads the retval of the replies configure pipelines; an
// unexpected reply type counts as a failure rather than a silent success.
func retvalOf(m api.Message) int32 {
	switch r := m.(type) {
	case *interfaces.SwInterfaceTagAddDelReply:
		return r.Retval
	case *interfaces.SwInterfaceSetMtuReply:
		return r.Retval
	case *interfaces.SwInterfaceAddDelAddressReply:
		return r.Retval
	case *interfaces.SwInterfaceSetFlagsReply:
		return r.Retval
	case *interfaces.SwInterfaceSetMacAddressReply:
		return r.Retval
	case *interfaces.SwInterfaceSetTableReply:
		return r.Retval
	case *interfaces.SwInterfaceSetRxModeReply:
		return r.Retval
	case *l2.L2InterfaceVlanTagRewriteReply:
		return r.Retval
	}
	return -1
}

func (p *Plugin) createLink(ctx context.Context, key string, v *ifmodel.Interface) (*Metadata, error) {
	var mac ethernet_types.MacAddress
	hasMAC := v.GetPhysAddress() != ""
	if hasMAC {
		var err error
		if mac, err = ethernet_types.ParseMacAddress(v.GetPhysAddress()); err != nil {
			return nil, fmt.Errorf("%s: phys_address: %w", key, err)
		}
	}
	meta := &Metadata{}
	switch v.GetType() {
	case ifmodel.Interface_SOFTWARE_LOOPBACK:
		r, err := p.ifs.CreateLoopback(ctx, &interfaces.CreateLoopback{MacAddress: mac})
		if err != nil {
			return nil, fmt.Errorf("%s: create_loopback: %w", key, err)
		}
		meta.SwIfIndex = uint32(r.SwIfIndex)
	case ifmodel.Interface_SUB_INTERFACE:
		s := v.GetSub()
		parent, ok := p.SwIfIndex(s.GetParentName())
		if !ok {
			return nil, fmt.Errorf("%s: parent interface %q has no sw_if_index", key, s.GetParentName())
		}
		r, err := p.ifs.CreateVlanSubif(ctx, &interfaces.CreateVlanSubif{SwIfIndex: interface_types.InterfaceIndex(parent), VlanID: s.GetSubId()})
		if err != nil {
			return nil, fmt.Errorf("%s: create_vlan_subif parent %d vlan %d: %w", key, parent, s.GetSubId(), err)
		}
		meta.SwIfIndex = uint32(r.SwIfIndex)
	case ifmodel.Interface_MEMIF:
		m := v.GetMemif()
		sock, err := p.sockets.acquire(ctx, m.GetSocketFilename())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		mk := p.memifKeyOf(m)
		p.mu.RLock()
		other, taken := p.memifOwner[mk]
		p.mu.RUnlock()
		if taken && other != v.GetName() {
			_ = p.sockets.release(ctx, sock)
			return nil, fmt.Errorf("%s: memif id %d on socket %q is already used by interface %q", key, mk.id, mk.socket, other)
		}
		req := &memif.MemifCreateV2{
			Role:       memif.MEMIF_ROLE_API_SLAVE,
			Mode:       memif.MemifMode(m.GetMode()),
			RxQueues:   uint8(orDefault(m.GetRxQueues(), defaultMemifQueues)),
			TxQueues:   uint8(orDefault(m.GetTxQueues(), defaultMemifQueues)),
			ID:         m.GetId(),
			SocketID:   sock,
			RingSize:   orDefault(m.GetRingSize(), defaultMemifRing),
			BufferSize: uint16(orDefault(m.GetBufferSize(), defaultMemifBuffer)),
			HwAddr:     mac,
			Secret:     m.GetSecret(),
		}
		if m.GetMaster() {
			req.Role = memif.MEMIF_ROLE_API_MASTER
		}
		r, err := p.mem.MemifCreateV2(ctx, req)
		if isVPPError(err) {
			if stray, ok := p.strayMemif(ctx, v.GetName(), sock, m.GetId()); ok {
				p.log.Warn("deleting an untagged memif in the way of a desired one", "key", key, "sw_if_index", uint32(stray), "socket_id", sock, "id", m.GetId())
				if _, derr := p.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: stray}); derr != nil {
					err = fmt.Errorf("%w (deleting untagged memif sw_if_index %d in the way: %w)", err, stray, derr)
				} else {
					r, err = p.mem.MemifCreateV2(ctx, req)
				}
			}
		}
		if err != nil {
			_ = p.sockets.release(ctx, sock)
			return nil, fmt.Errorf("%s: memif_create_v2 (socket id %d, id %d): %w", key, sock, m.GetId(), err)
		}
		meta.SwIfIndex, meta.MemifSocketID = uint32(r.SwIfIndex), sock
	case ifmodel.Interface_TAP:
		t := v.GetTap()
		if t.GetToMicroservice() != "" {
			// Ligato's Linux plugin would move the host side into the
			// microservice's namespace; vppmesh has no Linux plugin.
			p.log.Warn("tap to_microservice accepted; the host side stays in VPP's namespace", "key", key, "to_microservice", t.GetToMicroservice())
		}
		req := &tapv2.TapCreateV3{
			ID:           ^uint32(0),
			UseRandomMac: !hasMAC,
			MacAddress:   mac,
			NumRxQueues:  1,
			NumTxQueues:  1,
			RxRingSz:     uint16(orDefault(t.GetRxRingSize(), defaultTapRing)),
			TxRingSz:     uint16(orDefault(t.GetTxRingSize(), defaultTapRing)),
			Tag:          v.GetName(),
		}
		if t.GetHostIfName() != "" {
			req.HostIfNameSet, req.HostIfName = true, t.GetHostIfName()
		}
		if t.GetEnableGso() {
			req.TapFlags |= tapv2.TAP_API_FLAG_GSO
		}
		if t.GetEnableTunnel() {
			req.TapFlags |= tapv2.TAP_API_FLAG_TUN
		}
		r, err := p.tap.TapCreateV3(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s: tap_create_v3: %w", key, err)
		}
		meta.SwIfIndex = uint32(r.SwIfIndex)
	case ifmodel.Interface_AF_PACKET:
		r, err := p.afp.AfPacketCreateV3(ctx, &af_packet.AfPacketCreateV3{
			Mode:            af_packet.AF_PACKET_API_MODE_ETHERNET,
			HwAddr:          mac,
			UseRandomHwAddr: !hasMAC,
			HostIfName:      v.GetAfpacket().GetHostIfName(),
			NumRxQueues:     1,
			NumTxQueues:     1,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: af_packet_create_v3 (host %q): %w", key, v.GetAfpacket().GetHostIfName(), err)
		}
		meta.SwIfIndex = uint32(r.SwIfIndex)
	case ifmodel.Interface_VHOST_USER:
		l := v.GetVhostUser()
		req := &vhost_user.CreateVhostUserIfV2{
			IsServer:            l.GetServer(),
			SockFilename:        l.GetSocketFilename(),
			DisableMrgRxbuf:     l.GetDisableMrgRxbuf(),
			DisableIndirectDesc: l.GetDisableIndirectDesc(),
			EnableGso:           l.GetEnableGso(),
			EnablePacked:        l.GetEnablePacked(),
			EnableEventIdx:      l.GetEnableEventIdx(),
			UseCustomMac:        hasMAC,
			MacAddress:          mac,
			Tag:                 v.GetName(),
		}
		r, err := p.vhost.CreateVhostUserIfV2(ctx, req)
		if isVPPError(err) {
			if stray, ok := p.strayVhost(ctx, v.GetName(), l.GetSocketFilename()); ok {
				p.log.Warn("deleting an untagged vhost-user interface in the way of a desired one", "key", key, "sw_if_index", uint32(stray), "socket", l.GetSocketFilename())
				if _, derr := p.vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: stray}); derr != nil {
					err = fmt.Errorf("%w (deleting untagged vhost-user sw_if_index %d in the way: %w)", err, stray, derr)
				} else {
					r, err = p.vhost.CreateVhostUserIfV2(ctx, req)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: create_vhost_user_if_v2 (%q): %w", key, l.GetSocketFilename(), err)
		}
		meta.SwIfIndex = uint32(r.SwIfIndex)
	case ifmodel.Interface_VXLAN_TUNNEL:
		if err := p.createVxlan(ctx, key, v, meta); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: interface type %s is %w", key, v.GetType(), ErrNotSupported)
	}
	return meta, nil
}

func (p *Plugin) delete(ctx context.Context, key string, v *ifmodel.Interface, meta *Metadata) error {
	if meta == nil {
		return fmt.Errorf("%s: no metadata (sw_if_index unknown)", key)
	}
	if err := p.deleteLink(ctx, key, v, meta); err != nil {
		return err
	}
	p.unindex(v.GetName())
	p.forgetDetails(meta.SwIfIndex)
	p.forgetPublished(meta.SwIfIndex)
	p.log.Info("interface deleted", "key", key, "sw_if_index", meta.SwIfIndex)
	p.publish(&ifmodel.InterfaceState{
		Name: v.GetName(), InternalName: meta.InternalName, Type: v.GetType(), IfIndex: meta.SwIfIndex,
		AdminStatus: ifmodel.InterfaceState_DELETED, OperStatus: ifmodel.InterfaceState_DELETED,
		LastChange: nowUnix(),
	})
	return nil
}

func (p *Plugin) deleteLink(ctx context.Context, key string, v *ifmodel.Interface, meta *Metadata) error {
	idx := interface_types.InterfaceIndex(meta.SwIfIndex)
	switch v.GetType() {
	case ifmodel.Interface_SOFTWARE_LOOPBACK:
		if _, err := p.ifs.DeleteLoopback(ctx, &interfaces.DeleteLoopback{SwIfIndex: idx}); err != nil {
			return fmt.Errorf("%s: delete_loopback %d: %w", key, idx, err)
		}
	case ifmodel.Interface_SUB_INTERFACE:
		if _, err := p.ifs.DeleteSubif(ctx, &interfaces.DeleteSubif{SwIfIndex: idx}); err != nil {
			return fmt.Errorf("%s: delete_subif %d: %w", key, idx, err)
		}
	case ifmodel.Interface_MEMIF:
		if _, err := p.mem.MemifDelete(ctx, &memif.MemifDelete{SwIfIndex: idx}); err != nil {
			return fmt.Errorf("%s: memif_delete %d: %w", key, idx, err)
		}
		if err := p.sockets.release(ctx, meta.MemifSocketID); err != nil {
			// The memif is gone; a leftover socket registration is harmless
			// and is reused or cleaned by a later release.
			p.log.Warn("memif socket release failed", "key", key, "socket_id", meta.MemifSocketID, "error", err)
		}
	case ifmodel.Interface_TAP:
		if _, err := p.tap.TapDeleteV2(ctx, &tapv2.TapDeleteV2{SwIfIndex: idx}); err != nil {
			return fmt.Errorf("%s: tap_delete_v2 %d: %w", key, idx, err)
		}
	case ifmodel.Interface_AF_PACKET:
		if _, err := p.afp.AfPacketDelete(ctx, &af_packet.AfPacketDelete{HostIfName: v.GetAfpacket().GetHostIfName()}); err != nil {
			return fmt.Errorf("%s: af_packet_delete %q: %w", key, v.GetAfpacket().GetHostIfName(), err)
		}
	case ifmodel.Interface_VHOST_USER:
		if _, err := p.vhost.DeleteVhostUserIf(ctx, &vhost_user.DeleteVhostUserIf{SwIfIndex: idx}); err != nil {
			return fmt.Errorf("%s: delete_vhost_user_if %d: %w", key, idx, err)
		}
	case ifmodel.Interface_VXLAN_TUNNEL:
		return p.deleteVxlan(ctx, key, v, meta)
	default:
		return fmt.Errorf("%s: interface type %s is %w", key, v.GetType(), ErrNotSupported)
	}
	return nil
}
