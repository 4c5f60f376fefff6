package vppsim

import (
	"net"
	"os"
	"syscall"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
)

func registerVhostTapAfpHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *vhost_user.CreateVhostUserIfV2) []api.Message {
		rep := &vhost_user.CreateVhostUserIfV2Reply{}
		if m.SockFilename == "" {
			rep.Retval, rep.SwIfIndex = errInvalidArgument, ^interface_types.InterfaceIndex(0)
			return []api.Message{rep}
		}
		if other := st.tbl.vhostSock[m.SockFilename]; other != nil {
			// VPP answers with the interface that has the socket.
			rep.Retval, rep.SwIfIndex = errIfAlreadyExists, interface_types.InterfaceIndex(other.idx)
			return []api.Message{rep}
		}
		inst := st.freeInstance(kindVhostUser)
		if m.Renumber {
			if st.instanceUsed(kindVhostUser, m.CustomDevInstance) {
				rep.Retval, rep.SwIfIndex = errInstanceInUse, ^interface_types.InterfaceIndex(0)
				return []api.Message{rep}
			}
			inst = m.CustomDevInstance
		}
		spec := &VhostUserSpec{SocketFile: m.SockFilename, IsServer: m.IsServer, EnableGSO: m.EnableGso, Packed: m.EnablePacked,
			DisableMrgRxbuf: m.DisableMrgRxbuf, DisableIndirectDesc: m.DisableIndirectDesc, EnableEventIdx: m.EnableEventIdx}
		if m.UseCustomMac {
			spec.MAC = m.MacAddress
		} else {
			spec.MAC = st.newMAC()
		}
		ifc := st.add(&iface{name: vhostName(inst), kind: kindVhostUser, instance: inst, vhost: spec, mac: spec.MAC, tag: m.Tag})
		st.attachDriver(ifc, PortInfo{VhostUser: spec})
		rep.SwIfIndex = interface_types.InterfaceIndex(ifc.idx)
		c.log.Info("vhost-user created", "sw_if_index", ifc.idx, "name", ifc.name, "socket", spec.SocketFile, "server", spec.IsServer)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *vhost_user.ModifyVhostUserIfV2) []api.Message {
		rep := &vhost_user.ModifyVhostUserIfV2Reply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.kind != kindVhostUser {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		oldName, oldSocket, oldInst := ifc.name, ifc.vhost.SocketFile, ifc.instance
		if m.Renumber && m.CustomDevInstance != ifc.instance {
			if st.instanceUsed(kindVhostUser, m.CustomDevInstance) {
				rep.Retval = errInstanceInUse
				return []api.Message{rep}
			}
			ifc.instance = m.CustomDevInstance
			ifc.name = vhostName(ifc.instance)
			ifc.port.name.Store(&ifc.name)
		}
		spec := *ifc.vhost
		spec.SocketFile, spec.IsServer = m.SockFilename, m.IsServer
		spec.EnableGSO, spec.Packed = m.EnableGso, m.EnablePacked
		ifc.vhost = &spec
		st.tbl.reindexVhost(ifc, oldName, oldSocket, oldInst)
		// VPP tears the old socket down on modify; the peer must reconnect.
		st.setLink(ifc, false)
		if err := ifc.port.closeDriver(); err != nil {
			c.log.Warn("vhost-user driver close failed", "sw_if_index", ifc.idx, "err", err)
		}
		st.attachDriver(ifc, PortInfo{VhostUser: ifc.vhost})
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *vhost_user.DeleteVhostUserIf) []api.Message {
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.kind != kindVhostUser {
			return []api.Message{&vhost_user.DeleteVhostUserIfReply{Retval: errInvalidSwIfIndex}}
		}
		st.remove(ifc)
		c.log.Info("vhost-user deleted", "sw_if_index", ifc.idx, "name", ifc.name)
		return []api.Message{&vhost_user.DeleteVhostUserIfReply{}}
	})
	on(h, func(st *state, c *client, m *vhost_user.SwInterfaceVhostUserDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if ifc.kind != kindVhostUser || (m.SwIfIndex != ^interface_types.InterfaceIndex(0) && uint32(m.SwIfIndex) != ifc.idx) {
				continue
			}
			d := &vhost_user.SwInterfaceVhostUserDetails{
				SwIfIndex:     interface_types.InterfaceIndex(ifc.idx),
				InterfaceName: ifc.name,
				IsServer:      ifc.vhost.IsServer,
				SockFilename:  ifc.vhost.SocketFile,
			}
			if ifc.linkUp {
				// negotiated with the frontend (mergeable rx buffers)
				d.VirtioNetHdrSz = 12
			} else if !ifc.vhost.IsServer {
				d.SockErrno = vhostConnectErrno(ifc.vhost.SocketFile)
			}
			out = append(out, d)
		}
		return out
	})

	on(h, func(st *state, c *client, m *tapv2.TapCreateV3) []api.Message {
		rep := &tapv2.TapCreateV3Reply{}
		id := m.ID
		if id == ^uint32(0) {
			id = st.freeInstance(kindTap)
		} else if st.instanceUsed(kindTap, id) {
			rep.Retval = errInvalidInterface // tap.c: "interface already exists"
			return []api.Message{rep}
		}
		spec := &tapSpec{id: id, hostIfName: "tap" + itoa(id), flags: uint32(m.TapFlags),
			rxRing: m.RxRingSz, txRing: m.TxRingSz}
		if m.HostIfNameSet {
			spec.hostIfName = m.HostIfName
		}
		if m.HostNamespaceSet {
			spec.hostNS = m.HostNamespace
		}
		if m.HostBridgeSet {
			spec.hostBridge = m.HostBridge
		}
		if m.HostMtuSet {
			spec.hostMTU = m.HostMtuSize
		}
		if m.HostMacAddrSet {
			spec.hostMAC = m.HostMacAddr
		}
		if m.HostIP4PrefixSet {
			spec.hostIP4 = m.HostIP4Prefix
		}
		if m.HostIP6PrefixSet {
			spec.hostIP6 = m.HostIP6Prefix
		}
		mac := m.MacAddress
		if m.UseRandomMac || mac == [6]byte{} {
			mac = st.newMAC()
		}
		ifc := st.add(&iface{name: "tap" + itoa(id), kind: kindTap, instance: id, tap: spec, mac: mac, tag: m.Tag, linkUp: true})
		st.attachDriver(ifc, PortInfo{})
		rep.SwIfIndex = interface_types.InterfaceIndex(ifc.idx)
		c.log.Info("tap created", "sw_if_index", ifc.idx, "name", ifc.name, "host_if", spec.hostIfName)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *tapv2.TapDeleteV2) []api.Message {
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.kind != kindTap {
			return []api.Message{&tapv2.TapDeleteV2Reply{Retval: errInvalidSwIfIndex}}
		}
		st.remove(ifc)
		return []api.Message{&tapv2.TapDeleteV2Reply{}}
	})
	on(h, func(st *state, c *client, m *tapv2.SwInterfaceTapV2Dump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if ifc.kind != kindTap || (m.SwIfIndex != ^interface_types.InterfaceIndex(0) && uint32(m.SwIfIndex) != ifc.idx) {
				continue
			}
			t := ifc.tap
			out = append(out, &tapv2.SwInterfaceTapV2Details{
				SwIfIndex: ifc.idx, ID: t.id, TxRingSz: t.txRing, RxRingSz: t.rxRing,
				HostMtuSize: t.hostMTU, HostMacAddr: t.hostMAC, HostIP4Prefix: t.hostIP4,
				HostIP6Prefix: t.hostIP6, TapFlags: tapv2.TapFlags(t.flags), DevName: ifc.name,
				HostIfName: t.hostIfName, HostNamespace: t.hostNS, HostBridge: t.hostBridge,
			})
		}
		return out
	})

	on(h, func(st *state, c *client, m *af_packet.AfPacketCreateV3) []api.Message {
		rep := &af_packet.AfPacketCreateV3Reply{}
		if m.HostIfName == "" {
			rep.Retval, rep.SwIfIndex = errInvalidValue, ^interface_types.InterfaceIndex(0)
			return []api.Message{rep}
		}
		if other := st.tbl.afpHost[m.HostIfName]; other != nil {
			// VPP answers with the interface already on that host interface.
			rep.Retval, rep.SwIfIndex = errIfAlreadyExists, interface_types.InterfaceIndex(other.idx)
			return []api.Message{rep}
		}
		// VPP opens a packet socket on the host interface and fails if it is missing.
		if _, err := net.InterfaceByName(m.HostIfName); err != nil {
			c.log.Info("af_packet host interface missing", "host_if", m.HostIfName, "err", err)
			rep.Retval = errInvalidInterface
			return []api.Message{rep}
		}
		mac := m.HwAddr
		if m.UseRandomHwAddr || mac == [6]byte{} {
			mac = st.newMAC()
		}
		ifc := st.add(&iface{name: "host-" + m.HostIfName, kind: kindAfPacket, afp: &afpSpec{hostIfName: m.HostIfName}, mac: mac, linkUp: true})
		st.attachDriver(ifc, PortInfo{})
		rep.SwIfIndex = interface_types.InterfaceIndex(ifc.idx)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *af_packet.AfPacketDelete) []api.Message {
		if ifc := st.tbl.afpHost[m.HostIfName]; ifc != nil {
			st.remove(ifc)
			return []api.Message{&af_packet.AfPacketDeleteReply{}}
		}
		return []api.Message{&af_packet.AfPacketDeleteReply{Retval: errSyscallError1}}
	})
	on(h, func(st *state, c *client, m *af_packet.AfPacketDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if ifc.kind == kindAfPacket {
				out = append(out, &af_packet.AfPacketDetails{SwIfIndex: interface_types.InterfaceIndex(ifc.idx), HostIfName: ifc.afp.hostIfName})
			}
		}
		return out
	})
}

func vhostName(inst uint32) string { return "VirtualEthernet0/0/" + itoa(inst) }

// vhostConnectErrno is the errno VPP reports for a client socket it cannot connect:
// ENOENT while the file is missing, ECONNREFUSED while nobody listens on it.
func vhostConnectErrno(path string) int32 {
	if _, err := os.Stat(path); err != nil {
		return int32(syscall.ENOENT)
	}
	return int32(syscall.ECONNREFUSED)
}
