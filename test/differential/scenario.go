package differential

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"

	gomemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

const anyIdx = ^interface_types.InterfaceIndex(0)

// bogus is a sw_if_index no target has handed out.
const bogus = interface_types.InterfaceIndex(4000)

// explicitMACs are the addresses the scenario sets; they are compared as they are.
var explicitMACs = []ethernet_types.MacAddress{
	{0x02, 0x00, 0x00, 0x00, 0xd1, 0x01},
	{0x02, 0x00, 0x00, 0x00, 0xd1, 0x02},
	{0x02, 0x00, 0x00, 0x00, 0xd1, 0x03},
	{0x02, 0x00, 0x00, 0x00, 0xd1, 0x04},
}

// Steps with an allowlisted outcome (see Allowlist).
const (
	tapStep           = "tap create, dump, delete"
	vhostRenumberStep = "vhost-user create with an instance in use"
	// xconnectTxDeletedStep deletes the tx interface of an xconnect; it is the very
	// last step because VPP keeps the stale xconnect.
	xconnectTxDeletedStep = "delete the tx interface of an xconnect"
	afPacketAdminStep     = "af_packet admin up and down, recreated"
)

// Run plays the scenario against one target and returns its transcript.
func Run(ctx context.Context, tg Target) (*Transcript, error) {
	r, err := newRunner(ctx, tg)
	if err != nil {
		return nil, err
	}
	defer r.close()
	scenario(r)
	return r.tr, r.err
}

func pfx(s string) ip_types.AddressWithPrefix {
	p, err := ip_types.ParseAddressWithPrefix(s)
	if err != nil {
		panic(fmt.Sprintf("scenario prefix %q: %v", s, err)) // a typo in the scenario itself
	}
	return p
}

// idxOf returns the sw_if_index a create reply carried, or bogus when it failed.
func idxOf(rv int32, i interface_types.InterfaceIndex) interface_types.InterfaceIndex {
	if rv != 0 {
		return bogus
	}
	return i
}

func scenario(r *runner) {
	var (
		loop1, loop2, loop5 interface_types.InterfaceIndex
		mif1, mif2, mif3    interface_types.InterfaceIndex
		vh1, vh2            interface_types.InterfaceIndex
	)
	up := interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	sock := func(n string) string { return filepath.Join(r.tg.Dir, n) }

	r.step("version and ping", func() {
		r.call(&vpe.ShowVersion{}, &vpe.ShowVersionReply{})
		r.call(&memclnt.ControlPing{}, &memclnt.ControlPingReply{})
	})
	r.step("interface events on", func() {
		r.call(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 4242}, &interfaces.WantInterfaceEventsReply{})
		r.call(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 4242}, &interfaces.WantInterfaceEventsReply{})
	})
	r.statsSnapshot("stats at start")

	r.step("loopbacks", func() {
		rep := &interfaces.CreateLoopbackReply{}
		loop1 = idxOf(r.call(&interfaces.CreateLoopback{}, rep), rep.SwIfIndex)
		rep = &interfaces.CreateLoopbackReply{}
		loop2 = idxOf(r.call(&interfaces.CreateLoopback{MacAddress: explicitMACs[0]}, rep), rep.SwIfIndex)
		irep := &interfaces.CreateLoopbackInstanceReply{}
		loop5 = idxOf(r.call(&interfaces.CreateLoopbackInstance{IsSpecified: true, UserInstance: 5}, irep), irep.SwIfIndex)
		r.call(&interfaces.CreateLoopbackInstance{IsSpecified: true, UserInstance: 5}, &interfaces.CreateLoopbackInstanceReply{})
	})
	r.step("admin up/down", func() {
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: loop1, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: loop2, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: loop1, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: bogus, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
	})
	r.step("admin down", func() {
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: loop2, Flags: 0}, &interfaces.SwInterfaceSetFlagsReply{})
	})
	r.step("mtu", func() {
		r.call(&interfaces.SwInterfaceSetMtu{SwIfIndex: loop1, Mtu: []uint32{1500, 0, 0, 0}}, &interfaces.SwInterfaceSetMtuReply{})
		r.call(&interfaces.SwInterfaceSetMtu{SwIfIndex: loop2, Mtu: []uint32{0, 1400, 1280, 0}}, &interfaces.SwInterfaceSetMtuReply{})
		r.call(&interfaces.SwInterfaceSetMtu{SwIfIndex: bogus, Mtu: []uint32{1500, 0, 0, 0}}, &interfaces.SwInterfaceSetMtuReply{})
	})
	r.step("mtu above link mtu", func() {
		r.call(&interfaces.SwInterfaceSetMtu{SwIfIndex: loop5, Mtu: []uint32{100000, 0, 0, 0}}, &interfaces.SwInterfaceSetMtuReply{})
	})
	r.step("mac address", func() {
		r.call(&interfaces.SwInterfaceSetMacAddress{SwIfIndex: loop1, MacAddress: explicitMACs[1]}, &interfaces.SwInterfaceSetMacAddressReply{})
		r.call(&interfaces.SwInterfaceSetMacAddress{SwIfIndex: 0, MacAddress: explicitMACs[2]}, &interfaces.SwInterfaceSetMacAddressReply{})
		r.call(&interfaces.SwInterfaceSetMacAddress{SwIfIndex: bogus, MacAddress: explicitMACs[2]}, &interfaces.SwInterfaceSetMacAddressReply{})
	})
	r.step("tags", func() {
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: loop1, Tag: "diff-one"}, &interfaces.SwInterfaceTagAddDelReply{})
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: loop2, Tag: "diff-two"}, &interfaces.SwInterfaceTagAddDelReply{})
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: loop1, Tag: ""}, &interfaces.SwInterfaceTagAddDelReply{})
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: bogus, Tag: "x"}, &interfaces.SwInterfaceTagAddDelReply{})
	})
	r.step("tag delete", func() {
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: false, SwIfIndex: loop2}, &interfaces.SwInterfaceTagAddDelReply{})
		r.call(&interfaces.SwInterfaceTagAddDel{IsAdd: false, SwIfIndex: bogus}, &interfaces.SwInterfaceTagAddDelReply{})
	})
	addr := func(i interface_types.InterfaceIndex, add bool, p string) {
		r.call(&interfaces.SwInterfaceAddDelAddress{SwIfIndex: i, IsAdd: add, Prefix: pfx(p)}, &interfaces.SwInterfaceAddDelAddressReply{})
	}
	r.step("ip addresses", func() {
		addr(loop1, true, "198.51.100.1/24")
		addr(loop1, true, "198.51.100.1/24")
		// IPv6 on an interface that stays down: an up one would send ND/MLD and make
		// counters timing-dependent.
		addr(loop2, true, "2001:db8:d1::1/64")
		addr(loop2, true, "203.0.113.1/24")
		addr(loop2, true, "203.0.113.9/24")
		addr(bogus, true, "203.0.113.7/24")
	})
	r.step("ip address same subnet on another interface", func() {
		addr(loop5, true, "198.51.100.2/24")
	})
	r.step("ip address delete", func() {
		addr(loop2, false, "203.0.113.9/24")
		addr(loop2, false, "203.0.113.99/24")
		r.call(&interfaces.SwInterfaceAddDelAddress{SwIfIndex: loop5, DelAll: true}, &interfaces.SwInterfaceAddDelAddressReply{})
	})

	r.step("memif sockets", func() {
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: sock("m1.sock")}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: sock("m1.sock")}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: sock("other.sock")}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 0, SocketFilename: sock("zero.sock")}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: ^uint32(0), SocketFilename: sock("auto.sock")}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDel{IsAdd: true, SocketID: 3, SocketFilename: sock("m3.sock")}, &memif.MemifSocketFilenameAddDelReply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 4, SocketFilename: ""}, &memif.MemifSocketFilenameAddDelV2Reply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 77}, &memif.MemifSocketFilenameAddDelV2Reply{})
	})
	r.step("memif create", func() {
		rep := &memif.MemifCreateV2Reply{}
		mif1 = idxOf(r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 0}, rep), rep.SwIfIndex)
		rep = &memif.MemifCreateV2Reply{}
		mif2 = idxOf(r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 1, RingSize: 2048,
			BufferSize: 4096, RxQueues: 2, TxQueues: 2, HwAddr: explicitMACs[3], Secret: "s3cr3t"}, rep), rep.SwIfIndex)
		v1 := &memif.MemifCreateReply{}
		mif3 = idxOf(r.call(&memif.MemifCreate{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 3, ID: 7, Mode: memif.MEMIF_MODE_API_IP}, v1), v1.SwIfIndex)
	})
	r.step("memif create bad", func() {
		r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 0}, &memif.MemifCreateV2Reply{})
		r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, SocketID: 1, ID: 5}, &memif.MemifCreateV2Reply{})
		r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 99, ID: 0}, &memif.MemifCreateV2Reply{})
		r.call(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, SocketID: 1, ID: 9, RingSize: 1000}, &memif.MemifCreateV2Reply{})
	})
	r.step("memif admin up", func() {
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: mif1, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
	})
	r.step("memif socket delete in use", func() {
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 1}, &memif.MemifSocketFilenameAddDelV2Reply{})
	})
	// A Go memif slave (test/vppsim/memif) connects to memif1/0: link up, running
	// sizes in memif_dump, events; then it leaves.
	var peer *gomemif.Interface
	r.step("memif peer connects", func() {
		var err error
		peer, err = gomemif.NewSlave(sock("m1.sock"), gomemif.Config{ID: 0, Log2RingSize: 9, BufferSize: 1024,
			RetryInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			err = peer.Connect()
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
			err = peer.WaitUp(ctx)
			cancel()
		}
		if err != nil {
			r.text("peer: " + err.Error())
			return
		}
		r.waitFlags(mif1, interface_types.IF_STATUS_API_FLAG_ADMIN_UP|interface_types.IF_STATUS_API_FLAG_LINK_UP)
	})
	r.step("memif peer sends 10 frames xconnected to a memif without peer", func() {
		if peer == nil || len(peer.TxQueues()) == 0 {
			r.text("no peer queue")
			return
		}
		// The L2 path only: frames to an interface in L3 mode depend on the L3
		// path (VPP counts a non-IP ethertype as /if/punt, IPv4 as /if/ip4 and
		// /if/drops; README difference D9).
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif1, TxSwIfIndex: mif2, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
		defer r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif1, Enable: false}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: mif2, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
		defer r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: mif2, Flags: 0}, &interfaces.SwInterfaceSetFlagsReply{})
		frame := make([]byte, 64)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0xd1, 0x0a, 0x88, 0xb5})
		sent := 0
		for try := 0; sent < 10 && try < 100; try++ {
			n, err := peer.TxQueues()[0].TxBurst([][]byte{frame})
			if err != nil {
				r.text("peer tx: " + err.Error())
				return
			}
			sent += n
		}
		r.text(fmt.Sprintf("peer sent %d frames", sent))
		r.waitCounter("/if/rx", mif1, 10)
	})
	r.statsSnapshot("stats after traffic")
	r.step("memif peer leaves", func() {
		if peer == nil {
			return
		}
		_ = peer.Close()
		r.waitFlags(mif1, interface_types.IF_STATUS_API_FLAG_ADMIN_UP)
	})
	r.step("memif delete", func() {
		r.call(&memif.MemifDelete{SwIfIndex: mif3}, &memif.MemifDeleteReply{})
		r.call(&memif.MemifDelete{SwIfIndex: bogus}, &memif.MemifDeleteReply{})
		r.call(&memif.MemifDelete{SwIfIndex: loop5}, &memif.MemifDeleteReply{})
		r.call(&memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 3}, &memif.MemifSocketFilenameAddDelV2Reply{})
	})

	r.step("vhost-user create", func() {
		rep := &vhost_user.CreateVhostUserIfV2Reply{}
		vh1 = idxOf(r.call(&vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: sock("vh1.sock"), Tag: "vh-one"}, rep), rep.SwIfIndex)
		rep = &vhost_user.CreateVhostUserIfV2Reply{}
		vh2 = idxOf(r.call(&vhost_user.CreateVhostUserIfV2{SockFilename: sock("vh2.sock"), Renumber: true, CustomDevInstance: 7,
			UseCustomMac: true, MacAddress: explicitMACs[2]}, rep), rep.SwIfIndex)
	})
	r.step("vhost-user create bad", func() {
		r.call(&vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: sock("vh1.sock")}, &vhost_user.CreateVhostUserIfV2Reply{})
	})
	r.step("vhost-user modify", func() {
		r.call(&vhost_user.ModifyVhostUserIfV2{SwIfIndex: vh1, IsServer: true, SockFilename: sock("vh1b.sock")}, &vhost_user.ModifyVhostUserIfV2Reply{})
		r.call(&vhost_user.ModifyVhostUserIfV2{SwIfIndex: bogus, IsServer: true, SockFilename: sock("vh9.sock")}, &vhost_user.ModifyVhostUserIfV2Reply{})
		r.call(&vhost_user.ModifyVhostUserIfV2{SwIfIndex: loop1, IsServer: true, SockFilename: sock("vh9.sock")}, &vhost_user.ModifyVhostUserIfV2Reply{})
	})

	r.step("filtered dumps", func() {
		r.table("interface by index", r.dump(&interfaces.SwInterfaceDump{SwIfIndex: vh2}, &interfaces.SwInterfaceDetails{}))
		r.table("interface by bogus index", r.dump(&interfaces.SwInterfaceDump{SwIfIndex: bogus}, &interfaces.SwInterfaceDetails{}))
		r.table("interfaces named like loop", r.dump(&interfaces.SwInterfaceDump{SwIfIndex: anyIdx, NameFilterValid: true, NameFilter: "loop"}, &interfaces.SwInterfaceDetails{}))
		r.table("interfaces named like Ethernet0/0", r.dump(&interfaces.SwInterfaceDump{SwIfIndex: anyIdx, NameFilterValid: true, NameFilter: "Ethernet0/0"}, &interfaces.SwInterfaceDetails{}))
		r.table("interface by index and name", r.dump(&interfaces.SwInterfaceDump{SwIfIndex: loop1, NameFilterValid: true, NameFilter: "memif"}, &interfaces.SwInterfaceDetails{}))
		r.table("vhost-user by index", r.dump(&vhost_user.SwInterfaceVhostUserDump{SwIfIndex: vh1}, &vhost_user.SwInterfaceVhostUserDetails{}))
		r.table("vhost-user by loopback index", r.dump(&vhost_user.SwInterfaceVhostUserDump{SwIfIndex: loop1}, &vhost_user.SwInterfaceVhostUserDetails{}))
		r.table("ip addresses of a bogus index", r.dump(&ip.IPAddressDump{SwIfIndex: bogus}, &ip.IPAddressDetails{}))
		r.table("tap by bogus index", r.dump(&tapv2.SwInterfaceTapV2Dump{SwIfIndex: bogus}, &tapv2.SwInterfaceTapV2Details{}))
	})
	r.step("more bad arguments", func() {
		// any role but master is slave in VPP (here: a clash on a master socket);
		// an unknown mode is not sent: VPP 25.10 crashes on it (SIGSEGV), vppsim
		// answers -73 (README, Differences D8)
		r.call(&memif.MemifCreateV2{Role: 7, SocketID: 1, ID: 20}, &memif.MemifCreateV2Reply{})
		r.call(&vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: ""}, &vhost_user.CreateVhostUserIfV2Reply{})
		r.call(&af_packet.AfPacketCreateV3{HostIfName: ""}, &af_packet.AfPacketCreateV3Reply{})
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: bogus, Enable: false}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: loop5, Enable: false}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.BridgeDomainAddDelV2{BdID: 1 << 24, IsAdd: false}, &l2.BridgeDomainAddDelV2Reply{})
		r.call(&interfaces.SwInterfaceAddDelAddress{SwIfIndex: loop5, IsAdd: false, DelAll: true}, &interfaces.SwInterfaceAddDelAddressReply{})
		r.call(&interfaces.SwInterfaceSetMtu{SwIfIndex: 0, Mtu: []uint32{1500, 0, 0, 0}}, &interfaces.SwInterfaceSetMtuReply{})
	})
	r.step("vhost-user modify renumber", func() {
		r.call(&vhost_user.ModifyVhostUserIfV2{SwIfIndex: vh1, IsServer: true, SockFilename: sock("vh1b.sock"), Renumber: true, CustomDevInstance: 3}, &vhost_user.ModifyVhostUserIfV2Reply{})
	})
	r.step("tap bad", func() {
		r.call(&tapv2.TapDeleteV2{SwIfIndex: bogus}, &tapv2.TapDeleteV2Reply{})
		r.call(&tapv2.TapDeleteV2{SwIfIndex: loop1}, &tapv2.TapDeleteV2Reply{})
	})

	r.step("af_packet bad", func() {
		r.call(&af_packet.AfPacketCreateV3{HostIfName: "diffnohost0", Mode: af_packet.AF_PACKET_API_MODE_ETHERNET}, &af_packet.AfPacketCreateV3Reply{})
		r.call(&af_packet.AfPacketDelete{HostIfName: "diffnohost0"}, &af_packet.AfPacketDeleteReply{})
	})
	if r.tg.HostIf != "" {
		r.step("af_packet create", func() {
			r.call(&af_packet.AfPacketCreateV3{HostIfName: r.tg.HostIf, Mode: af_packet.AF_PACKET_API_MODE_ETHERNET,
				UseRandomHwAddr: true}, &af_packet.AfPacketCreateV3Reply{})
			r.call(&af_packet.AfPacketCreateV3{HostIfName: r.tg.HostIf, Mode: af_packet.AF_PACKET_API_MODE_ETHERNET,
				UseRandomHwAddr: true}, &af_packet.AfPacketCreateV3Reply{})
		})
		// VPP brings the host interface up with the af_packet one, and its link then
		// follows the host's carrier (down: the veth peer is down); vppsim's stays up.
		// The step ends by recreating the interface, fresh on both (Allowlist D10).
		r.step(afPacketAdminStep, func() {
			// a second create answers -79 with the existing interface's index
			rep := &af_packet.AfPacketCreateV3Reply{}
			r.call(&af_packet.AfPacketCreateV3{HostIfName: r.tg.HostIf, Mode: af_packet.AF_PACKET_API_MODE_ETHERNET,
				UseRandomHwAddr: true}, rep)
			r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: rep.SwIfIndex, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
			r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: rep.SwIfIndex, Flags: 0}, &interfaces.SwInterfaceSetFlagsReply{})
			r.snapshot()
			r.call(&af_packet.AfPacketDelete{HostIfName: r.tg.HostIf}, &af_packet.AfPacketDeleteReply{})
			r.call(&af_packet.AfPacketCreateV3{HostIfName: r.tg.HostIf, Mode: af_packet.AF_PACKET_API_MODE_ETHERNET,
				UseRandomHwAddr: true}, &af_packet.AfPacketCreateV3Reply{})
		})
	}

	r.step("l2 xconnect", func() {
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif1, TxSwIfIndex: mif2, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif2, TxSwIfIndex: mif1, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: bogus, TxSwIfIndex: mif1, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: vh1, TxSwIfIndex: bogus, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
	})
	r.step("l2 xconnect off", func() {
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif2, Enable: false}, &l2.SwInterfaceSetL2XconnectReply{})
	})

	bd := func(id uint32, add bool) {
		r.call(&l2.BridgeDomainAddDelV2{BdID: id, IsAdd: add, Flood: true, UuFlood: true, Forward: true, Learn: true, MacAge: 5, BdTag: "diff-bd"},
			&l2.BridgeDomainAddDelV2Reply{})
	}
	r.step("bridge domains", func() {
		bd(10, true)
		bd(10, true)
		bd(0, true)
		bd(1<<24, true)
		r.call(&l2.BridgeDomainAddDelV2{BdID: ^uint32(0), IsAdd: true, Learn: true}, &l2.BridgeDomainAddDelV2Reply{})
	})
	r.step("bridge ports", func() {
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: vh1, BdID: 10, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: vh2, BdID: 10, Shg: 1, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: loop1, BdID: 10, PortType: l2.L2_API_PORT_TYPE_BVI, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: loop2, BdID: 10, PortType: l2.L2_API_PORT_TYPE_BVI, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: loop5, BdID: 20, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: bogus, BdID: 10, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		r.call(&l2.SwInterfaceSetL2Bridge{RxSwIfIndex: loop2, BdID: 1 << 24, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
	})
	r.step("bridge domain filtered dumps", func() {
		r.table("bridge domain 20", r.dump(&l2.BridgeDomainDump{BdID: 20, SwIfIndex: anyIdx}, &l2.BridgeDomainDetails{}))
		r.table("bridge domain of vh2", r.dump(&l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: vh2}, &l2.BridgeDomainDetails{}))
		r.table("bridge domain 99", r.dump(&l2.BridgeDomainDump{BdID: 99, SwIfIndex: anyIdx}, &l2.BridgeDomainDetails{}))
	})
	r.step("l2fib", func() {
		mac := ethernet_types.MacAddress{0x02, 0x00, 0x00, 0x00, 0xd1, 0x0f}
		r.call(&l2.L2fibAddDel{Mac: mac, BdID: 10, SwIfIndex: vh1, IsAdd: true, StaticMac: true}, &l2.L2fibAddDelReply{})
		r.call(&l2.L2fibAddDel{Mac: mac, BdID: 99, SwIfIndex: vh1, IsAdd: true, StaticMac: true}, &l2.L2fibAddDelReply{})
		r.call(&l2.L2fibAddDel{Mac: mac, BdID: 10, SwIfIndex: mif1, IsAdd: true, StaticMac: true}, &l2.L2fibAddDelReply{})
		r.call(&l2.L2fibAddDel{Mac: mac, BdID: 10, IsAdd: false}, &l2.L2fibAddDelReply{})
		r.call(&l2.L2fibAddDel{Mac: mac, BdID: 10, IsAdd: false}, &l2.L2fibAddDelReply{})
	})
	r.step("xconnect replaces bridge", func() {
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: vh2, TxSwIfIndex: mif1, Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
	})
	r.step("bridge domain delete in use", func() {
		bd(10, false)
	})
	r.statsSnapshot("stats with interfaces")

	r.step("cli", func() {
		r.cli("show version")
		r.cli("show interface")
		r.cli("show mode")
		r.cli("sh int loop0")
		r.cli("show bridge-domain")
		r.cli("show memif")
		r.cli("show vhost-user")
		r.cli("show errors")
		r.cli("diff-no-such-command")
	})

	r.step("delete interfaces", func() {
		r.call(&vhost_user.DeleteVhostUserIf{SwIfIndex: vh1}, &vhost_user.DeleteVhostUserIfReply{})
		r.call(&vhost_user.DeleteVhostUserIf{SwIfIndex: bogus}, &vhost_user.DeleteVhostUserIfReply{})
		r.call(&vhost_user.DeleteVhostUserIf{SwIfIndex: loop1}, &vhost_user.DeleteVhostUserIfReply{})
		// the xconnect towards mif2 goes first: VPP keeps an xconnect whose tx
		// interface is deleted (see the last step)
		r.call(&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: mif1, Enable: false}, &l2.SwInterfaceSetL2XconnectReply{})
		r.call(&memif.MemifDelete{SwIfIndex: mif2}, &memif.MemifDeleteReply{})
		r.call(&interfaces.DeleteLoopback{SwIfIndex: loop1}, &interfaces.DeleteLoopbackReply{})
		r.call(&interfaces.DeleteLoopback{SwIfIndex: bogus}, &interfaces.DeleteLoopbackReply{})
		r.call(&interfaces.DeleteLoopback{SwIfIndex: mif1}, &interfaces.DeleteLoopbackReply{})
	})
	r.step("index reuse", func() {
		rep := &interfaces.CreateLoopbackReply{}
		loop1 = idxOf(r.call(&interfaces.CreateLoopback{}, rep), rep.SwIfIndex)
	})
	if r.tg.HostIf != "" {
		r.step("af_packet delete", func() {
			r.call(&af_packet.AfPacketDelete{HostIfName: r.tg.HostIf}, &af_packet.AfPacketDeleteReply{})
		})
	}
	r.step("bridge domain delete", func() {
		bd(10, false)
		bd(10, false)
		bd(0, false)
	})
	r.statsSnapshot("stats after deletes")
	// Steps whose outcome differs on purpose (Allowlist) come last: an interface one
	// target creates and the other does not would shift every later label.
	r.step(vhostRenumberStep, func() {
		rep := &vhost_user.CreateVhostUserIfV2Reply{}
		if r.call(&vhost_user.CreateVhostUserIfV2{SockFilename: sock("vh3.sock"), Renumber: true, CustomDevInstance: 7}, rep) == 0 {
			r.call(&vhost_user.DeleteVhostUserIf{SwIfIndex: rep.SwIfIndex}, &vhost_user.DeleteVhostUserIfReply{})
		}
	})
	r.step(tapStep, func() {
		rep := &tapv2.TapCreateV3Reply{}
		rv := r.call(&tapv2.TapCreateV3{ID: 4711, HostIfNameSet: true, HostIfName: "difftap0", NumRxQueues: 1, NumTxQueues: 1}, rep)
		if rv == 0 {
			r.table("tap", r.dump(&tapv2.SwInterfaceTapV2Dump{SwIfIndex: anyIdx}, &tapv2.SwInterfaceTapV2Details{}))
			r.call(&tapv2.TapDeleteV2{SwIfIndex: rep.SwIfIndex}, &tapv2.TapDeleteV2Reply{})
		}
	})
	r.step("interface events off", func() {
		r.call(&interfaces.WantInterfaceEvents{EnableDisable: 0, PID: 4242}, &interfaces.WantInterfaceEventsReply{})
		r.call(&interfaces.WantInterfaceEvents{EnableDisable: 0, PID: 4242}, &interfaces.WantInterfaceEventsReply{})
		r.call(&interfaces.SwInterfaceSetFlags{SwIfIndex: loop5, Flags: up}, &interfaces.SwInterfaceSetFlagsReply{})
	})
	r.step(xconnectTxDeletedStep, func() {
		r.call(&memif.MemifDelete{SwIfIndex: mif1}, &memif.MemifDeleteReply{})
		r.table("l2 xconnects", r.dump(&l2.L2XconnectDump{}, &l2.L2XconnectDetails{}))
	})
}

// cli runs one CLI command and records its retval and the parts of its text that are
// behaviour: the first line of show version, the interface names and states of show
// interface, all of show mode.
func (r *runner) cli(cmd string) {
	rep := &vlib.CliInbandReply{}
	r.call(&vlib.CliInband{Cmd: cmd}, rep)
	lines := strings.Split(strings.TrimRight(rep.Reply, "\n"), "\n")
	switch {
	case cmd == "show version":
		f := strings.Fields(rep.Reply)
		if len(f) >= 2 {
			r.text("  text: " + f[0] + " " + strings.TrimSuffix(f[1], "~vppsim"))
		}
	case cmd == "show interface" || strings.HasPrefix(cmd, "sh int "):
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) >= 4 && !strings.HasPrefix(l, " ") {
				var idx uint32
				fmt.Sscan(f[1], &idx)
				r.text(fmt.Sprintf("  text: %s %s %s %s", f[0], r.labels.name(idx), f[2], f[3]))
			}
		}
	default:
		keep := cliKeep[strings.Fields(cmd)[len(strings.Fields(cmd))-1]]
		for _, l := range lines {
			f := strings.Fields(l)
			if keep != nil && (len(f) == 0 || !keep(f)) {
				continue
			}
			// whitespace and private directories are not behaviour
			s := strings.Join(f, " ")
			s = strings.ReplaceAll(s, r.tg.Dir, "$DIR")
			if r.tg.RuntimeDir != "" {
				s = strings.ReplaceAll(s, r.tg.RuntimeDir+"/", "$RUNTIME/")
			}
			r.text("  text: " + s)
		}
	}
}

// cliKeep selects the lines of a show command that are compared (by its last word);
// the rest of VPP's text (file descriptors, feature masks, placement) is not
// modelled by vppsim (README: output columns approximate VPP's).
var cliKeep = map[string]func(f []string) bool{
	"memif": func(f []string) bool {
		switch f[0] {
		case "interface", "socket-id", "flags", "sockets", "id":
			return true
		}
		return f[0] == "0" || f[0] == "1" // socket rows with fixed ids
	},
	"vhost-user": func(f []string) bool {
		return f[0] == "Interface:" || (f[0] == "socket" && f[1] == "filename")
	},
	// show errors: the header only. VPP counts a frame once per graph node that
	// flags it (three rows for one frame dropped at a down egress) and names nodes
	// where vppsim names interfaces (README, Known differences); the counts are
	// compared through the stats segment instead.
	"errors": func(f []string) bool { return f[0] == "Count" },
}

// waitFlags polls sw_interface_dump (up to 10 s) until the interface has these flags,
// so a step that waits for a peer records the settled state; it records nothing.
func (r *runner) waitFlags(idx interface_types.InterfaceIndex, want interface_types.IfStatusFlags) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && r.err == nil {
		rep := &interfaces.SwInterfaceDetails{}
		ctx := r.ch.SendMultiRequest(&interfaces.SwInterfaceDump{SwIfIndex: idx})
		got := interface_types.IfStatusFlags(0)
		for {
			last, err := ctx.ReceiveReply(rep)
			if err != nil || last {
				break
			}
			got = rep.Flags
		}
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.text(fmt.Sprintf("flags of %s never became %v", r.labels.name(uint32(idx)), want))
}

// waitCounter polls the stats segment (up to 5 s) until a combined counter of the
// interface reaches packets; it records nothing.
func (r *runner) waitCounter(name string, idx interface_types.InterfaceIndex, packets uint64) {
	if r.stats == nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		entries, err := r.stats.DumpStats("^" + name + "$")
		if err == nil && len(entries) == 1 {
			if d, ok := entries[0].Data.(adapter.CombinedCounterStat); ok {
				var sum uint64
				for _, th := range d {
					if int(idx) < len(th) {
						sum += th[idx][0]
					}
				}
				if sum >= packets {
					// the other counters of the same frames settle with it
					time.Sleep(150 * time.Millisecond)
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.text(fmt.Sprintf("%s of %s never reached %d", name, r.labels.name(uint32(idx)), packets))
}

// snapshot dumps every table the scenario touches and records those that changed.
func (r *runner) snapshot() {
	ifs := r.dump(&interfaces.SwInterfaceDump{SwIfIndex: anyIdx}, &interfaces.SwInterfaceDetails{})
	r.table("interfaces", ifs)
	var addrs []api.Message
	for _, m := range ifs {
		i := m.(*interfaces.SwInterfaceDetails).SwIfIndex
		for _, v6 := range []bool{false, true} {
			addrs = append(addrs, r.dump(&ip.IPAddressDump{SwIfIndex: i, IsIPv6: v6}, &ip.IPAddressDetails{})...)
		}
	}
	r.table("ip addresses", addrs)
	// VPP walks a hash table of socket ids: its order means nothing.
	r.tableSorted("memif sockets", r.dump(&memif.MemifSocketFilenameDump{}, &memif.MemifSocketFilenameDetails{}))
	r.table("memifs", r.dump(&memif.MemifDump{}, &memif.MemifDetails{}))
	r.table("vhost-user", r.dump(&vhost_user.SwInterfaceVhostUserDump{SwIfIndex: anyIdx}, &vhost_user.SwInterfaceVhostUserDetails{}))
	r.table("af_packet", r.dump(&af_packet.AfPacketDump{}, &af_packet.AfPacketDetails{}))
	r.table("l2 xconnects", r.dump(&l2.L2XconnectDump{}, &l2.L2XconnectDetails{}))
	r.table("bridge domains", r.dump(&l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: anyIdx}, &l2.BridgeDomainDetails{}))
}
