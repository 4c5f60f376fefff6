package vppsim

import (
	"net/netip"
	"strings"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vpe"
)

// registerAPIHandlers installs every implemented VPP API message.
func registerAPIHandlers(h map[string]handlerFunc) {
	registerInterfaceHandlers(h)
	registerMemifHandlers(h)
	registerVhostTapAfpHandlers(h)
	registerL2Handlers(h)
	registerIPHandlers(h)
	registerSubifHandlers(h)
	registerL2FibDump(h)
	registerCLIHandlers(h)
}

func registerInterfaceHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *vpe.ShowVersion) []api.Message {
		return []api.Message{&vpe.ShowVersionReply{
			Program: "vpe", Version: c.sim.cfg.Version, BuildDate: "vppsim", // VPP leaves build_directory empty
		}}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceDump) []api.Message {
		// VPP matches the name filter as a substring.
		match := func(ifc *iface) bool { return !m.NameFilterValid || strings.Contains(ifc.name, m.NameFilter) }
		// A valid name filter wins over the index, as in VPP.
		if m.SwIfIndex != ^interface_types.InterfaceIndex(0) && !m.NameFilterValid {
			// VPP answers a dump by index from the pool directly.
			if ifc := st.get(uint32(m.SwIfIndex)); ifc != nil && match(ifc) {
				return []api.Message{ifaceDetails(ifc)}
			}
			return nil
		}
		out := make([]api.Message, 0, st.tbl.count)
		for ifc := range st.all() {
			if match(ifc) {
				out = append(out, ifaceDetails(ifc))
			}
		}
		return out
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetFlags) []api.Message {
		rep := &interfaces.SwInterfaceSetFlagsReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		st.setAdmin(ifc, m.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.WantInterfaceEvents) []api.Message {
		enable := m.EnableDisable != 0
		// VPP refuses to enable twice or to disable what is not enabled.
		if c.wantEvents.Load() == enable {
			return []api.Message{&interfaces.WantInterfaceEventsReply{Retval: errInvalidRegistration}}
		}
		c.eventPID.Store(m.PID)
		c.wantEvents.Store(enable)
		c.log.Info("interface events", "enable", enable, "pid", m.PID)
		return []api.Message{&interfaces.WantInterfaceEventsReply{}}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceAddDelAddress) []api.Message {
		return []api.Message{&interfaces.SwInterfaceAddDelAddressReply{Retval: st.addDelAddress(m)}}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetMacAddress) []api.Message {
		rep := &interfaces.SwInterfaceSetMacAddressReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		switch {
		case ifc == nil:
			rep.Retval = errInvalidSwIfIndex
		case ifc.kind == kindLocal:
			rep.Retval = errUnimplemented // local0's device class cannot change its address
		default:
			ifc.mac = m.MacAddress
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetMtu) []api.Message {
		rep := &interfaces.SwInterfaceSetMtuReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		// VPP (vnet_sw_interface_set_protocol_mtu) takes all four values as they are,
		// zeros included, and checks none of them against the link MTU.
		var mtu [4]uint32
		copy(mtu[:], m.Mtu)
		ifc.mtu = mtu
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceTagAddDel) []api.Message {
		rep := &interfaces.SwInterfaceTagAddDelReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		switch {
		case ifc == nil:
			rep.Retval = errInvalidSwIfIndex
		case m.IsAdd && m.Tag == "":
			rep.Retval = errInvalidValue
		case m.IsAdd:
			ifc.tag = m.Tag
		default:
			ifc.tag = ""
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.CreateLoopback) []api.Message {
		ifc := st.createLoopback(st.freeInstance(kindLoopback), m.MacAddress)
		return []api.Message{&interfaces.CreateLoopbackReply{SwIfIndex: interface_types.InterfaceIndex(ifc.idx)}}
	})
	on(h, func(st *state, c *client, m *interfaces.CreateLoopbackInstance) []api.Message {
		rep := &interfaces.CreateLoopbackInstanceReply{}
		inst := st.freeInstance(kindLoopback)
		if m.IsSpecified {
			if st.instanceUsed(kindLoopback, m.UserInstance) {
				// vnet_create_loopback_interface: instance in use
				rep.Retval, rep.SwIfIndex = errInvalidRegistration, ^interface_types.InterfaceIndex(0)
				return []api.Message{rep}
			}
			inst = m.UserInstance
		}
		rep.SwIfIndex = interface_types.InterfaceIndex(st.createLoopback(inst, m.MacAddress).idx)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.DeleteLoopback) []api.Message {
		rep := &interfaces.DeleteLoopbackReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.kind != kindLoopback {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		st.remove(ifc)
		c.log.Info("loopback deleted", "sw_if_index", ifc.idx, "name", ifc.name)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *ip.IPAddressDump) []api.Message {
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil {
			return nil
		}
		var out []api.Message
		for _, a := range ifc.addrs {
			if (a.Address.Af == ip_types.ADDRESS_IP6) != m.IsIPv6 {
				continue
			}
			out = append(out, &ip.IPAddressDetails{SwIfIndex: m.SwIfIndex, Prefix: a})
		}
		return out
	})
}

func (st *state) createLoopback(inst uint32, mac ethernet_types.MacAddress) *iface {
	ifc := &iface{name: "loop" + itoa(inst), kind: kindLoopback, instance: inst}
	if mac == (ethernet_types.MacAddress{}) {
		// VPP's loopback default address: de:ad:00:00:00:<instance>.
		mac = ethernet_types.MacAddress{0xde, 0xad, 0, 0, byte(inst >> 8), byte(inst)}
	}
	ifc.mac = mac
	st.add(ifc)
	st.attachDriver(ifc, PortInfo{})
	return ifc
}

func (st *state) addDelAddress(m *interfaces.SwInterfaceAddDelAddress) int32 {
	ifc := st.get(uint32(m.SwIfIndex))
	if ifc == nil {
		return errInvalidSwIfIndex
	}
	if m.DelAll {
		for _, a := range ifc.addrs {
			delete(st.addrOwner, a.Address)
		}
		ifc.addrs = nil
		return 0
	}
	idx := -1
	for i, a := range ifc.addrs {
		if a.Address == m.Prefix.Address {
			idx = i
		}
	}
	if m.IsAdd {
		if idx >= 0 {
			return errAddressInUse
		}
		if _, used := st.addrOwner[m.Prefix.Address]; used {
			return errAddressInUse
		}
		// VPP refuses a prefix overlapping an address of another interface in the same
		// table (all interfaces are in table 0 here), or of the same interface with
		// another length.
		if st.overlaps(ifc, m.Prefix) {
			return errAddressInUse
		}
		ifc.addrs = append(ifc.addrs, m.Prefix)
		st.addrOwner[m.Prefix.Address] = ifc.idx
		return 0
	}
	if idx < 0 {
		return errAddressNotFoundForInterface
	}
	ifc.addrs = append(ifc.addrs[:idx:idx], ifc.addrs[idx+1:]...)
	delete(st.addrOwner, m.Prefix.Address)
	return 0
}

// overlaps reports whether p overlaps an address of another interface, or one of
// ifc's own with a different prefix length (ip4/ip6_add_del_interface_address).
func (st *state) overlaps(ifc *iface, p ip_types.AddressWithPrefix) bool {
	np, err := netip.ParsePrefix(p.String())
	if err != nil {
		return false
	}
	np = np.Masked()
	for other := range st.all() {
		for _, a := range other.addrs {
			op, err := netip.ParsePrefix(a.String())
			if err != nil || op.Addr().Is4() != np.Addr().Is4() {
				continue
			}
			if !op.Masked().Overlaps(np) {
				continue
			}
			if other == ifc && op.Bits() == np.Bits() {
				continue // several addresses of one prefix on one interface are fine
			}
			return true
		}
	}
	return false
}

func ifaceDetails(ifc *iface) *interfaces.SwInterfaceDetails {
	if ifc.sub != nil {
		return subDetails(ifc)
	}
	return &interfaces.SwInterfaceDetails{
		SwIfIndex:    interface_types.InterfaceIndex(ifc.idx),
		SupSwIfIndex: ifc.idx,
		L2Address:    ifc.mac,
		Flags:        interface_types.IfStatusFlags(ifc.flags()),
		Type:         interface_types.IF_API_TYPE_HARDWARE,
		// VPP reports link_duplex unknown for every virtual interface.
		LinkMtu:          ifc.linkMtu,
		Mtu:              ifc.mtu[:],
		InterfaceName:    ifc.name,
		InterfaceDevType: devTypes[ifc.kind],
		Tag:              ifc.tag,
	}
}

// attachDriver asks the configured factory for the interface's packet driver.
func (st *state) attachDriver(ifc *iface, info PortInfo) {
	if st.drivers == nil {
		return
	}
	info.SwIfIndex, info.Name, info.Kind = ifc.idx, ifc.name, ifc.kind.String()
	d, err := st.drivers(ifc.port, info)
	if err != nil {
		st.log.Warn("driver attach failed", "sw_if_index", ifc.idx, "name", ifc.name, "err", err)
		return
	}
	ifc.port.setDriver(d)
}

func itoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
