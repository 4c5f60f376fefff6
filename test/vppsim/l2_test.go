package vppsim

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/vlib"
)

func dumpBDs(t *testing.T, conn api.Connection, bdID uint32) []*l2.BridgeDomainDetails {
	t.Helper()
	s, err := l2.NewServiceClient(conn).BridgeDomainDump(context.Background(), &l2.BridgeDomainDump{BdID: bdID, SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, s.Recv)
}

func TestBridgeDomainAndModeExclusivity(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	ic := interfaces.NewServiceClient(conn)
	lc := l2.NewServiceClient(conn)
	a, _ := ic.CreateLoopback(c, &interfaces.CreateLoopback{})
	b, _ := ic.CreateLoopback(c, &interfaces.CreateLoopback{})

	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 10, Flood: true, Forward: true, Learn: true, UuFlood: true, IsAdd: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 10, IsAdd: true}); !errors.Is(err, api.BD_ALREADY_EXISTS) {
		t.Errorf("duplicate bd: %v", err)
	}
	// bd 0 always exists in VPP.
	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 0, IsAdd: true}); !errors.Is(err, api.BD_ALREADY_EXISTS) {
		t.Errorf("bd 0: %v", err)
	}
	auto, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: ^uint32(0), IsAdd: true})
	// bd_get_unused_id: clib random_u32 from seed 0, 24 bits.
	if err != nil || auto.BdID != 7271263 {
		t.Errorf("auto bd id: %+v %v", auto, err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(c, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: a.SwIfIndex, BdID: 10, PortType: l2.L2_API_PORT_TYPE_BVI, Enable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(c, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: b.SwIfIndex, BdID: 10, Shg: 1, Enable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.SwInterfaceSetL2Bridge(c, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: 42, BdID: 10, Enable: true}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("missing interface: %v", err)
	}
	bds := dumpBDs(t, conn, 10)
	if len(bds) != 1 || bds[0].NSwIfs != 2 || bds[0].BviSwIfIndex != a.SwIfIndex || bds[0].SwIfDetails[1].Shg != 1 || !bds[0].Learn {
		t.Fatalf("bd dump = %+v", bds)
	}
	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 10, IsAdd: false}); !errors.Is(err, api.BD_IN_USE) {
		t.Errorf("delete bd in use: %v", err)
	}
	mac := [6]byte{0x02, 0, 0, 0, 0, 9}
	if _, err := lc.L2fibAddDel(c, &l2.L2fibAddDel{Mac: mac, BdID: 10, SwIfIndex: b.SwIfIndex, IsAdd: true, StaticMac: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.L2fibAddDel(c, &l2.L2fibAddDel{Mac: mac, BdID: 99, SwIfIndex: b.SwIfIndex, IsAdd: true}); !errors.Is(err, api.NO_SUCH_ENTRY) {
		t.Errorf("l2fib on missing bd: %v", err)
	}

	// Xconnect takes b out of the bridge: modes are exclusive.
	if _, err := lc.SwInterfaceSetL2Xconnect(c, &l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: b.SwIfIndex, TxSwIfIndex: a.SwIfIndex, Enable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.SwInterfaceSetL2Xconnect(c, &l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: b.SwIfIndex, TxSwIfIndex: 77, Enable: true}); !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("xconnect to missing tx: %v", err)
	}
	if bds := dumpBDs(t, conn, 10); bds[0].NSwIfs != 1 {
		t.Errorf("b still in bd after xconnect: %+v", bds[0].SwIfDetails)
	}
	// ... and joining a bridge removes the xconnect.
	if _, err := lc.SwInterfaceSetL2Bridge(c, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: b.SwIfIndex, BdID: 20, Enable: true}); err != nil {
		t.Fatal(err)
	}
	mode, _ := vlib.NewServiceClient(conn).CliInband(c, &vlib.CliInband{Cmd: "show mode"})
	if strings.Contains(mode.Reply, "xconnect") || !strings.Contains(mode.Reply, "l2 bridge loop1 bd_id 20 shg 0") {
		t.Errorf("show mode:\n%s", mode.Reply)
	}
	// Joining bd 20 created it implicitly, as VPP's bd_find_or_add_bd_index does.
	if bds := dumpBDs(t, conn, ^uint32(0)); len(bds) != 3 {
		t.Errorf("bds = %d, want 3 (1, 10, 20)", len(bds))
	}
	show, _ := vlib.NewServiceClient(conn).CliInband(c, &vlib.CliInband{Cmd: "show bridge-domain"})
	if !strings.Contains(show.Reply, "BD-ID") || !strings.Contains(show.Reply, "loop0") {
		t.Errorf("show bridge-domain:\n%s", show.Reply)
	}
	// Deleting a member leaves the bridge domain deletable.
	if _, err := ic.DeleteLoopback(c, &interfaces.DeleteLoopback{SwIfIndex: a.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 10, IsAdd: false}); err != nil {
		t.Errorf("delete emptied bd: %v", err)
	}
	if _, err := lc.BridgeDomainAddDelV2(c, &l2.BridgeDomainAddDelV2{BdID: 10, IsAdd: false}); !errors.Is(err, api.NO_SUCH_ENTRY) {
		t.Errorf("delete missing bd: %v", err)
	}
}
