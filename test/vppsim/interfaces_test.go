package vppsim

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
)

func TestLoopbackTagMacMtuAddress(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	ic := interfaces.NewServiceClient(conn)
	l0, err := ic.CreateLoopback(c, &interfaces.CreateLoopback{})
	if err != nil {
		t.Fatal(err)
	}
	l1, err := ic.CreateLoopback(c, &interfaces.CreateLoopback{})
	if err != nil {
		t.Fatal(err)
	}
	ifs := dumpIfaces(t, conn, "loop")
	if len(ifs) != 2 || ifs[0].InterfaceName != "loop0" || ifs[1].InterfaceName != "loop1" ||
		ifs[1].L2Address != (ethernet_types.MacAddress{0xde, 0xad, 0, 0, 0, 1}) || ifs[0].InterfaceDevType != "Loopback" {
		t.Fatalf("loopbacks = %+v", ifs)
	}
	if _, err := ic.SwInterfaceTagAddDel(c, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: l0.SwIfIndex, Tag: "uplink"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.SwInterfaceTagAddDel(c, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: 99, Tag: "x"}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("tag on missing interface: %v", err)
	}
	mac := ethernet_types.MacAddress{0x02, 1, 2, 3, 4, 5}
	if _, err := ic.SwInterfaceSetMacAddress(c, &interfaces.SwInterfaceSetMacAddress{SwIfIndex: l0.SwIfIndex, MacAddress: mac}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.SwInterfaceSetMtu(c, &interfaces.SwInterfaceSetMtu{SwIfIndex: l0.SwIfIndex, Mtu: []uint32{1500, 0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	// VPP 25.10 takes an MTU above the link MTU (and zeros) as it is.
	if _, err := ic.SwInterfaceSetMtu(c, &interfaces.SwInterfaceSetMtu{SwIfIndex: l0.SwIfIndex, Mtu: []uint32{65000, 0, 0, 0}}); err != nil {
		t.Errorf("mtu above link mtu: %v", err)
	}
	if d := dumpIfaces(t, conn, "loop0")[0]; d.Mtu[0] != 65000 {
		t.Errorf("mtu after 65000: %v", d.Mtu)
	}
	if _, err := ic.SwInterfaceSetMtu(c, &interfaces.SwInterfaceSetMtu{SwIfIndex: l0.SwIfIndex, Mtu: []uint32{1500, 0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	d := dumpIfaces(t, conn, "loop0")[0]
	if d.Tag != "uplink" || d.L2Address != mac || d.Mtu[0] != 1500 {
		t.Errorf("loop0 = %+v", d)
	}

	pfx, _ := ip_types.ParseAddressWithPrefix("10.0.0.1/24")
	add := &interfaces.SwInterfaceAddDelAddress{SwIfIndex: l0.SwIfIndex, IsAdd: true, Prefix: pfx}
	if _, err := ic.SwInterfaceAddDelAddress(c, add); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.SwInterfaceAddDelAddress(c, add); !errors.Is(err, api.ADDRESS_IN_USE) {
		t.Errorf("duplicate address: %v", err)
	}
	if got := dumpAddrs(t, conn, l0.SwIfIndex); len(got) != 1 || got[0].Prefix.String() != "10.0.0.1/24" {
		t.Errorf("ip_address_dump = %v", got)
	}
	// Deleting the loopback frees loop0 for the next create, and its index.
	if _, err := ic.DeleteLoopback(c, &interfaces.DeleteLoopback{SwIfIndex: l0.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.DeleteLoopback(c, &interfaces.DeleteLoopback{SwIfIndex: l0.SwIfIndex}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("second delete: %v", err)
	}
	l2, err := ic.CreateLoopback(c, &interfaces.CreateLoopback{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.SwIfIndex != l0.SwIfIndex || dumpIfaces(t, conn, "loop0")[0].Tag != "" {
		t.Errorf("recreated loop0 index %d (want %d), fresh state expected", l2.SwIfIndex, l0.SwIfIndex)
	}
	if got := dumpAddrs(t, conn, l2.SwIfIndex); len(got) != 0 {
		t.Errorf("address survived delete: %v", got)
	}
	_ = l1
}

func dumpAddrs(t *testing.T, conn api.Connection, idx interface_types.InterfaceIndex) []*ip.IPAddressDetails {
	t.Helper()
	s, err := ip.NewServiceClient(conn).IPAddressDump(context.Background(), &ip.IPAddressDump{SwIfIndex: idx})
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, s.Recv)
}

func TestInterfaceEvents(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	watcher := connect(t, sim)
	ch, err := watcher.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	events := make(chan api.Message, 16)
	sub, err := ch.SubscribeNotification(events, &interfaces.SwInterfaceEvent{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := ch.SendRequest(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 77}).ReceiveReply(&interfaces.WantInterfaceEventsReply{}); err != nil {
		t.Fatal(err)
	}
	if err := ch.SendRequest(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 77}).ReceiveReply(&interfaces.WantInterfaceEventsReply{}); !errors.Is(err, api.INVALID_REGISTRATION) {
		t.Errorf("enabling twice: %v", err)
	}
	c := context.Background()
	ic := interfaces.NewServiceClient(conn)
	lo, _ := ic.CreateLoopback(c, &interfaces.CreateLoopback{})
	// VPP announces a new interface with its flags.
	if ev := nextEvent(t, events); ev.SwIfIndex != lo.SwIfIndex || ev.Flags != 0 || ev.Deleted {
		t.Errorf("create event = %+v", ev)
	}
	if _, err := ic.SwInterfaceSetFlags(c, setFlags(uint32(lo.SwIfIndex), true)); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.SwIfIndex != lo.SwIfIndex || ev.Flags != interface_types.IF_STATUS_API_FLAG_ADMIN_UP|interface_types.IF_STATUS_API_FLAG_LINK_UP || ev.PID != 77 {
		t.Errorf("admin up event = %+v", ev)
	}
	// A driver's link change is an event too.
	m, _ := memif.NewServiceClient(conn).MemifCreateV2(c, &memif.MemifCreateV2{ID: 3})
	if ev := nextEvent(t, events); ev.SwIfIndex != m.SwIfIndex || ev.Flags != 0 {
		t.Errorf("memif create event = %+v", ev)
	}
	port, _ := sim.Port(uint32(m.SwIfIndex))
	port.SetLink(true)
	if ev := nextEvent(t, events); ev.SwIfIndex != m.SwIfIndex || ev.Flags != interface_types.IF_STATUS_API_FLAG_LINK_UP {
		t.Errorf("link event = %+v", ev)
	}
	if _, err := ic.DeleteLoopback(c, &interfaces.DeleteLoopback{SwIfIndex: lo.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); !ev.Deleted || ev.SwIfIndex != lo.SwIfIndex {
		t.Errorf("delete event = %+v", ev)
	}
	// After disconnecting, the watcher's subscription is gone but state is not.
	watcher.Disconnect()
	for sim.ClientCount() != 1 {
		time.Sleep(time.Millisecond)
	}
	if len(sim.subscribers()) != 0 {
		t.Error("subscription survived disconnect")
	}
	if ifs := dumpIfaces(t, conn, "memif"); len(ifs) != 1 {
		t.Errorf("state lost on client disconnect: %v", names(ifs))
	}
}

func nextEvent(t *testing.T, ch chan api.Message) *interfaces.SwInterfaceEvent {
	t.Helper()
	select {
	case m := <-ch:
		return m.(*interfaces.SwInterfaceEvent)
	case <-time.After(5 * time.Second):
		t.Fatal("no sw_interface_event")
		return nil
	}
}

func TestVhostUser(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	vc := vhost_user.NewServiceClient(conn)
	v0, err := vc.CreateVhostUserIfV2(c, &vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: "/tmp/vm1.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.CreateVhostUserIfV2(c, &vhost_user.CreateVhostUserIfV2{SockFilename: "/tmp/vm1.sock"}); !errors.Is(err, api.IF_ALREADY_EXISTS) {
		t.Errorf("same socket twice: %v", err)
	}
	v7, err := vc.CreateVhostUserIfV2(c, &vhost_user.CreateVhostUserIfV2{SockFilename: "/tmp/vm2.sock", Renumber: true, CustomDevInstance: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.ModifyVhostUserIfV2(c, &vhost_user.ModifyVhostUserIfV2{SwIfIndex: v7.SwIfIndex, SockFilename: "/tmp/vm3.sock", IsServer: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := vc.ModifyVhostUserIfV2(c, &vhost_user.ModifyVhostUserIfV2{SwIfIndex: 0}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("modify local0: %v", err)
	}
	s, err := vc.SwInterfaceVhostUserDump(c, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, s.Recv)
	if len(got) != 2 || got[0].InterfaceName != "VirtualEthernet0/0/0" || !got[0].IsServer ||
		got[1].InterfaceName != "VirtualEthernet0/0/7" || got[1].SockFilename != "/tmp/vm3.sock" || !got[1].IsServer {
		t.Errorf("vhost dump = %+v", got)
	}
	if _, err := vc.DeleteVhostUserIf(c, &vhost_user.DeleteVhostUserIf{SwIfIndex: v0.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if _, err := vc.DeleteVhostUserIf(c, &vhost_user.DeleteVhostUserIf{SwIfIndex: v0.SwIfIndex}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("second delete: %v", err)
	}
}

func TestTapAndAfPacket(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	tc := tapv2.NewServiceClient(conn)
	t0, err := tc.TapCreateV3(c, &tapv2.TapCreateV3{ID: ^uint32(0), HostIfNameSet: true, HostIfName: "cnf-eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.TapCreateV3(c, &tapv2.TapCreateV3{ID: 0}); !errors.Is(err, api.INVALID_INTERFACE) {
		t.Errorf("tap id 0 twice: %v", err)
	}
	s, err := tc.SwInterfaceTapV2Dump(c, &tapv2.SwInterfaceTapV2Dump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Recv()
	if err != nil || d.DevName != "tap0" || d.HostIfName != "cnf-eth0" || d.SwIfIndex != uint32(t0.SwIfIndex) {
		t.Errorf("tap dump = %+v, %v", d, err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("tap dump end: %v", err)
	}
	if _, err := tc.TapDeleteV2(c, &tapv2.TapDeleteV2{SwIfIndex: t0.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.TapDeleteV2(c, &tapv2.TapDeleteV2{SwIfIndex: t0.SwIfIndex}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("second tap delete: %v", err)
	}

	ac := af_packet.NewServiceClient(conn)
	if _, err := ac.AfPacketCreateV3(c, &af_packet.AfPacketCreateV3{HostIfName: "no-such-if0"}); !errors.Is(err, api.INVALID_INTERFACE) {
		t.Errorf("missing host interface: %v", err)
	}
	a, err := ac.AfPacketCreateV3(c, &af_packet.AfPacketCreateV3{HostIfName: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.AfPacketCreateV3(c, &af_packet.AfPacketCreateV3{HostIfName: "lo"}); !errors.Is(err, api.IF_ALREADY_EXISTS) {
		t.Errorf("af_packet twice: %v", err)
	}
	if ifs := dumpIfaces(t, conn, "host-lo"); len(ifs) != 1 || ifs[0].SwIfIndex != a.SwIfIndex {
		t.Errorf("af_packet in dump = %v", names(ifs))
	}
	ds, _ := ac.AfPacketDump(c, &af_packet.AfPacketDump{})
	if d, err := ds.Recv(); err != nil || d.HostIfName != "lo" {
		t.Errorf("af_packet dump = %+v, %v", d, err)
	}
	if _, err := ac.AfPacketDelete(c, &af_packet.AfPacketDelete{HostIfName: "lo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.AfPacketDelete(c, &af_packet.AfPacketDelete{HostIfName: "lo"}); !errors.Is(err, api.SYSCALL_ERROR_1) {
		t.Errorf("af_packet delete twice: %v", err)
	}
}
