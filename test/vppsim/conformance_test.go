package vppsim

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
)

func TestCompatibilityAllServedPackages(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	ch, err := conn.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var all []api.Message
	for _, msgs := range [][]api.Message{memclnt.AllMessages(), vpe.AllMessages(), vlib.AllMessages(),
		interfaces.AllMessages(), ip.AllMessages(), l2.AllMessages(), memif.AllMessages(),
		vhost_user.AllMessages(), tapv2.AllMessages(), af_packet.AllMessages()} {
		all = append(all, msgs...)
	}
	if err := ch.CheckCompatiblity(all...); err != nil {
		t.Fatalf("compatibility: %v", err)
	}
}

func TestShowVersionAndControlPing(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	v, err := vpe.NewServiceClient(conn).ShowVersion(c, &vpe.ShowVersion{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Version, "25.10") || v.Program != "vpe" {
		t.Errorf("show_version = %+v", v)
	}
	p, err := memclnt.NewServiceClient(conn).ControlPing(c, &memclnt.ControlPing{})
	if err != nil {
		t.Fatal(err)
	}
	// VPP leaves client_index zero in control_ping_reply.
	if p.VpePID != vpePID || p.ClientIndex != 0 {
		t.Errorf("control_ping_reply = %+v", p)
	}
}

func TestUnimplementedMessageAnswersUnimplemented(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	_, err := interfaces.NewServiceClient(conn).SwInterfaceSetIPDirectedBroadcast(context.Background(), &interfaces.SwInterfaceSetIPDirectedBroadcast{})
	if !errors.Is(err, api.UNIMPLEMENTED) {
		t.Fatalf("err = %v, want %v", err, api.UNIMPLEMENTED)
	}
	// An unimplemented dump ends empty instead of hanging.
	stream, err := ip.NewServiceClient(conn).IPMtableDump(context.Background(), &ip.IPMtableDump{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("recv = %v, want EOF", err)
	}
}

func dumpIfacesB(t testing.TB, conn api.Connection) []*interfaces.SwInterfaceDetails {
	return dumpIfaces(t, conn, "")
}

func dumpIfaces(t testing.TB, conn api.Connection, filter string) []*interfaces.SwInterfaceDetails {
	t.Helper()
	req := &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}
	if filter != "" {
		req.NameFilterValid, req.NameFilter = true, filter
	}
	stream, err := interfaces.NewServiceClient(conn).SwInterfaceDump(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return drain(t, stream.Recv)
}

func TestMemifPairXconnectDumpAndShowInterface(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	mc := memif.NewServiceClient(conn)
	// socket_id ~0: VPP draws the id from clib's random_u32 with seed 0.
	auto, err := mc.MemifSocketFilenameAddDelV2(c, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: ^uint32(0), SocketFilename: "/tmp/cnf-auto.sock"})
	if err != nil || auto.SocketID != 1013904223 {
		t.Errorf("allocated socket id = %+v, %v, want 1013904223", auto, err)
	}
	if _, err := mc.MemifSocketFilenameAddDelV2(c, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: auto.SocketID}); err != nil {
		t.Errorf("delete allocated socket: %v", err)
	}
	sock, err := mc.MemifSocketFilenameAddDelV2(c, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: "/tmp/cnf1.sock"})
	if err != nil || sock.SocketID != 1 {
		t.Fatalf("socket 1: %+v, %v", sock, err)
	}
	m1, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, ID: 1, SocketID: 0, Secret: "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, ID: 2, SocketID: sock.SocketID})
	if err != nil {
		t.Fatal(err)
	}
	if m1.SwIfIndex != 1 || m2.SwIfIndex != 2 {
		t.Fatalf("sw_if_index = %d, %d, want 1, 2", m1.SwIfIndex, m2.SwIfIndex)
	}
	// Same id on the same socket is refused; the same id on another socket is fine.
	if _, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{ID: 1, SocketID: 0}); retval(err) != errSubifAlreadyExists {
		t.Errorf("duplicate memif: err = %v", err)
	}
	if _, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{ID: 1, SocketID: 7}); retval(err) != errInvalidArgument {
		t.Errorf("unknown socket: err = %v", err)
	}
	l2c := l2.NewServiceClient(conn)
	for _, xc := range [][2]interface_types.InterfaceIndex{{m1.SwIfIndex, m2.SwIfIndex}, {m2.SwIfIndex, m1.SwIfIndex}} {
		if _, err := l2c.SwInterfaceSetL2Xconnect(c, &l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: xc[0], TxSwIfIndex: xc[1], Enable: true}); err != nil {
			t.Fatal(err)
		}
	}
	ic := interfaces.NewServiceClient(conn)
	for _, idx := range []interface_types.InterfaceIndex{m1.SwIfIndex, m2.SwIfIndex} {
		if _, err := ic.SwInterfaceSetFlags(c, &interfaces.SwInterfaceSetFlags{SwIfIndex: idx, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}); err != nil {
			t.Fatal(err)
		}
	}
	ifs := dumpIfaces(t, conn, "")
	if len(ifs) != 3 || ifs[0].InterfaceName != "local0" || ifs[1].InterfaceName != "memif0/1" || ifs[2].InterfaceName != "memif1/2" {
		t.Fatalf("dump = %v", names(ifs))
	}
	if ifs[1].Flags != interface_types.IF_STATUS_API_FLAG_ADMIN_UP || ifs[1].InterfaceDevType != "memif" || ifs[1].Mtu[0] != 9000 {
		t.Errorf("memif0/1 details = %+v", ifs[1])
	}
	if got := dumpIfaces(t, conn, "memif1"); len(got) != 1 || got[0].InterfaceName != "memif1/2" {
		t.Errorf("filtered dump = %v", names(got))
	}

	xs, err := l2c.L2XconnectDump(c, &l2.L2XconnectDump{})
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]interface_types.InterfaceIndex
	for {
		d, err := xs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, [2]interface_types.InterfaceIndex{d.RxSwIfIndex, d.TxSwIfIndex})
	}
	if len(pairs) != 2 || pairs[0] != [2]interface_types.InterfaceIndex{1, 2} || pairs[1] != [2]interface_types.InterfaceIndex{2, 1} {
		t.Errorf("xconnects = %v", pairs)
	}

	md, err := mc.MemifDump(c, &memif.MemifDump{})
	if err != nil {
		t.Fatal(err)
	}
	mds := drain(t, md.Recv)
	// No peer connected: VPP reports the running sizes, ring 1 << 0 and buffer 0.
	if len(mds) != 2 || mds[0].IfName != "memif0/1" || mds[0].RingSize != 1 || mds[0].BufferSize != 0 || mds[1].SocketID != 1 {
		t.Errorf("memif dump = %+v", mds)
	}

	cli := vlib.NewServiceClient(conn)
	out, err := cli.CliInband(c, &vlib.CliInband{Cmd: "show interface"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.Reply, "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "Name") || !strings.Contains(lines[0], "MTU (L3/IP4/IP6/MPLS)") {
		t.Fatalf("show interface:\n%s", out.Reply)
	}
	if f := strings.Fields(lines[2]); len(f) < 4 || f[0] != "memif0/1" || f[1] != "1" || f[2] != "up" || f[3] != "9000/0/0/0" {
		t.Errorf("show interface row %q", lines[2])
	}
	if f := strings.Fields(lines[1]); f[0] != "local0" || f[2] != "down" || f[3] != "0/0/0/0" {
		t.Errorf("show interface row %q", lines[1])
	}
	mode, _ := cli.CliInband(c, &vlib.CliInband{Cmd: "show mode"})
	if !strings.Contains(mode.Reply, "l2 xconnect memif0/1 memif1/2\n") || !strings.Contains(mode.Reply, "l3 local0\n") {
		t.Errorf("show mode:\n%s", mode.Reply)
	}
	mshow, _ := cli.CliInband(c, &vlib.CliInband{Cmd: "sh memif"})
	if !strings.Contains(mshow.Reply, "interface memif0/1") || strings.Contains(mshow.Reply, "s3cr3t") {
		t.Errorf("show memif:\n%s", mshow.Reply)
	}

	// Deleting an interface drops its xconnect and the one pointing at it.
	if _, err := mc.MemifDelete(c, &memif.MemifDelete{SwIfIndex: m2.SwIfIndex}); err != nil {
		t.Fatal(err)
	}
	mode, _ = cli.CliInband(c, &vlib.CliInband{Cmd: "show mode"})
	if strings.Contains(mode.Reply, "xconnect") {
		t.Errorf("xconnect survived delete:\n%s", mode.Reply)
	}
	if _, err := mc.MemifDelete(c, &memif.MemifDelete{SwIfIndex: m2.SwIfIndex}); retval(err) != errInvalidSwIfIndex {
		t.Errorf("second delete: err = %v", err)
	}
	// The socket is in use by memif0/1's sibling? No: socket 1 is free now and can go.
	if _, err := mc.MemifSocketFilenameAddDelV2(c, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 0}); retval(err) != errInvalidArgument {
		t.Errorf("delete socket 0: err = %v", err)
	}
	if _, err := mc.MemifSocketFilenameAddDelV2(c, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: 1}); err != nil {
		t.Errorf("delete socket 1: %v", err)
	}
	// The freed index is reused by the next interface, as VPP's pools do.
	m3, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_SLAVE, ID: 9, SocketID: 0})
	if retval(err) != errSubifAlreadyExists {
		t.Errorf("slave on a master socket: err = %v", err)
	}
	m3, err = mc.MemifCreateV2(c, &memif.MemifCreateV2{ID: 9, SocketID: 0})
	if err != nil || m3.SwIfIndex != 2 {
		t.Errorf("reuse: %+v, %v", m3, err)
	}
}

func names(ifs []*interfaces.SwInterfaceDetails) []string {
	var out []string
	for _, d := range ifs {
		out = append(out, d.InterfaceName)
	}
	return out
}

// TestMemifUnknownModeRefused pins README difference D8: VPP 25.10 crashes (SIGSEGV)
// on memif_create_v2 with a mode it does not know; vppsim answers -73. A role other
// than master is slave, as in VPP.
func TestMemifUnknownModeRefused(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	mc := memif.NewServiceClient(conn)
	if _, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{Mode: 9, ID: 1}); retval(err) != errInvalidArgument {
		t.Errorf("mode 9: err = %v, want %d", err, errInvalidArgument)
	}
	r, err := mc.MemifCreateV2(c, &memif.MemifCreateV2{Role: 7, ID: 2})
	if err != nil {
		t.Fatalf("role 7: %v", err)
	}
	md, err := mc.MemifDump(c, &memif.MemifDump{})
	if err != nil {
		t.Fatal(err)
	}
	if mds := drain(t, md.Recv); len(mds) != 1 || mds[0].SwIfIndex != r.SwIfIndex || mds[0].Role != memif.MEMIF_ROLE_API_SLAVE {
		t.Errorf("memif dump = %+v", mds)
	}
}
