package vppsim

import (
	"net/netip"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"
)

// VXLAN tunnel API, answering as VPP 25.10 does (checked against it):
//   - a tunnel is keyed by source, destination, VNI (and encap VRF); the same key
//     twice is -75 (tunnel already exists) with sw_if_index ~0;
//   - a delete names the key, not the index; an unknown key is -6 with ~0, a
//     known one replies with the deleted sw_if_index;
//   - source = destination is -82, mixed families -7, encap VRF other than 0
//     -3 (vppsim has only the default table), decap_next_index beyond
//     vxlan4-input's next nodes -76; ~0 means l2-input and dumps as 1;
//   - ports 0 mean 4789; the VNI is not range-checked (VPP keeps 32 bits but
//     the wire carries 24);
//   - the interface is vxlan_tunnel<instance> (lowest free instance unless one
//     is asked for: -147 when taken), device type "VXLAN", created admin and
//     link up.

// Retvals of the VXLAN API.
const (
	errTunnelExist     int32 = -75
	errInvalidDecapNxt int32 = -76
	errSameSrcDst      int32 = -82
)

// decapNextMax is the last valid decap_next_index (vxlan4-input's next nodes:
// error-drop, l2-input, ip4-input, ip6-input).
const decapNextMax = 3

func addrOf(a ip_types.Address) netip.Addr {
	if a.Af == ip_types.ADDRESS_IP6 {
		return netip.AddrFrom16(a.Un.GetIP6())
	}
	return netip.AddrFrom4(a.Un.GetIP4())
}

func portOr4789(p uint16) uint16 {
	if p == 0 {
		return vxlanPort
	}
	return p
}

// vxlanTunnel finds a tunnel by its key.
func (st *state) vxlanTunnel(src, dst netip.Addr, vni, vrf uint32) *iface {
	if vrf != 0 {
		return nil
	}
	for ifc := range st.all() {
		if s := ifc.vxlan; s != nil && s.src == src && s.dst == dst && s.vni&0xffffff == vni&0xffffff {
			return ifc
		}
	}
	return nil
}

func registerVxlanHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *vxlan.VxlanAddDelTunnelV3) []api.Message {
		fail := func(rv int32) []api.Message {
			return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{Retval: rv, SwIfIndex: ^interface_types.InterfaceIndex(0)}}
		}
		src, dst := addrOf(m.SrcAddress), addrOf(m.DstAddress)
		if src.Is4() != dst.Is4() {
			return fail(errInvalidValue)
		}
		if m.EncapVrfID != 0 {
			return fail(errNoSuchFib)
		}
		existing := st.vxlanTunnel(src, dst, m.Vni, 0)
		if !m.IsAdd {
			if existing == nil {
				return fail(errNoSuchEntry)
			}
			idx := existing.idx
			st.remove(existing)
			c.log.Info("vxlan tunnel deleted", "sw_if_index", idx, "src", src, "dst", dst, "vni", m.Vni)
			return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{SwIfIndex: interface_types.InterfaceIndex(idx)}}
		}
		decap := m.DecapNextIndex
		if decap == ^uint32(0) {
			decap = 1
		} else if decap > decapNextMax {
			return fail(errInvalidDecapNxt)
		}
		if src == dst {
			return fail(errSameSrcDst)
		}
		if existing != nil {
			return fail(errTunnelExist)
		}
		inst := st.freeInstance(kindVxlan)
		if m.Instance != ^uint32(0) {
			if st.instanceUsed(kindVxlan, m.Instance) {
				return fail(errInstanceInUse)
			}
			inst = m.Instance
		}
		spec := &vxlanSpec{src: src, dst: dst, vni: m.Vni, srcPort: portOr4789(m.SrcPort), dstPort: portOr4789(m.DstPort),
			mcast: uint32(m.McastSwIfIndex), decapNext: decap, instance: inst}
		ifc := st.add(&iface{name: "vxlan_tunnel" + itoa(inst), kind: kindVxlan, instance: inst, vxlan: spec,
			mac: st.newMAC(), linkUp: true})
		st.setAdmin(ifc, true)
		ifc.port.setDriver(&vxlanDriver{pl: st.plane(), spec: *spec})
		st.syncL3()
		c.log.Info("vxlan tunnel created", "sw_if_index", ifc.idx, "name", ifc.name, "src", src, "dst", dst, "vni", m.Vni)
		return []api.Message{&vxlan.VxlanAddDelTunnelV3Reply{SwIfIndex: interface_types.InterfaceIndex(ifc.idx)}}
	})
	on(h, func(st *state, c *client, m *vxlan.VxlanTunnelV2Dump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if s := ifc.vxlan; s != nil && (m.SwIfIndex == ^interface_types.InterfaceIndex(0) || uint32(m.SwIfIndex) == ifc.idx) {
				out = append(out, &vxlan.VxlanTunnelV2Details{
					SwIfIndex: interface_types.InterfaceIndex(ifc.idx), Instance: s.instance,
					SrcAddress: ip_types.NewAddress(s.src.AsSlice()), DstAddress: ip_types.NewAddress(s.dst.AsSlice()),
					SrcPort: s.srcPort, DstPort: s.dstPort, McastSwIfIndex: interface_types.InterfaceIndex(s.mcast),
					DecapNextIndex: s.decapNext, Vni: s.vni,
				})
			}
		}
		return out
	})
	on(h, func(st *state, c *client, m *vxlan.VxlanTunnelDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if s := ifc.vxlan; s != nil && (m.SwIfIndex == ^interface_types.InterfaceIndex(0) || uint32(m.SwIfIndex) == ifc.idx) {
				out = append(out, &vxlan.VxlanTunnelDetails{
					SwIfIndex: interface_types.InterfaceIndex(ifc.idx), Instance: s.instance,
					SrcAddress: ip_types.NewAddress(s.src.AsSlice()), DstAddress: ip_types.NewAddress(s.dst.AsSlice()),
					McastSwIfIndex: interface_types.InterfaceIndex(s.mcast), DecapNextIndex: s.decapNext, Vni: s.vni,
				})
			}
		}
		return out
	})
}
