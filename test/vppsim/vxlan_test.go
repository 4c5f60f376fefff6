package vppsim

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/af_packet"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/ip_types"
	vppmemif "go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vxlan"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

func ipAddr(s string) ip_types.Address { return ip_types.NewAddress(netip.MustParseAddr(s).AsSlice()) }

func tunnelReq(add bool, src, dst string, vni uint32) *vxlan.VxlanAddDelTunnelV3 {
	return &vxlan.VxlanAddDelTunnelV3{IsAdd: add, Instance: ^uint32(0), SrcAddress: ipAddr(src), DstAddress: ipAddr(dst), Vni: vni, DecapNextIndex: ^uint32(0)}
}

// vethPair creates a veth pair in the host namespace with nothing on it
// (no addresses, IPv6 off so the kernel sends nothing), removed at cleanup.
func vethPair(t *testing.T) (string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a veth pair and packet sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	a, b := fmt.Sprintf("vxs%da", os.Getpid()%100000), fmt.Sprintf("vxs%db", os.Getpid()%100000)
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	for _, n := range []string{a, b} {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+n+"/disable_ipv6", []byte("1"), 0o644)
		run("link", "set", n, "up")
	}
	return a, b
}

// vxNode is one vppsim with a memif (master) cross-connected to a VXLAN
// tunnel over an AF_PACKET uplink.
type vxNode struct {
	e                   *pktEnv
	uplink, tun, memifI uint32
}

func newVxNode(t *testing.T, host, local, remote string, vni uint32) *vxNode {
	e := startPacketSim(t)
	ctx := context.Background()
	ar, err := af_packet.NewServiceClient(e.conn).AfPacketCreateV3(ctx, &af_packet.AfPacketCreateV3{
		Mode: af_packet.AF_PACKET_API_MODE_ETHERNET, UseRandomHwAddr: true, HostIfName: host, NumRxQueues: 1, NumTxQueues: 1})
	if err != nil {
		t.Fatalf("af_packet_create_v3 %s: %v", host, err)
	}
	n := &vxNode{e: e, uplink: uint32(ar.SwIfIndex)}
	pf, _ := ip_types.ParseAddressWithPrefix(local + "/24")
	if _, err := interfaceClient(e.conn).SwInterfaceAddDelAddress(ctx, &interfaces.SwInterfaceAddDelAddress{SwIfIndex: ar.SwIfIndex, IsAdd: true, Prefix: pf}); err != nil {
		t.Fatal(err)
	}
	e.adminUp(n.uplink, true)
	tr, err := vxlan.NewServiceClient(e.conn).VxlanAddDelTunnelV3(ctx, tunnelReq(true, local, remote, vni))
	if err != nil {
		t.Fatal(err)
	}
	n.tun = uint32(tr.SwIfIndex)
	e.memifSocket(1, e.path("memif.sock"))
	n.memifI = e.createMemif(&vppmemif.MemifCreateV2{Role: vppmemif.MEMIF_ROLE_API_MASTER, ID: 1, SocketID: 1, RingSize: 1024, BufferSize: 2048, RxQueues: 1, TxQueues: 1})
	e.xconnect(n.memifI, n.tun, true)
	e.xconnect(n.tun, n.memifI, true)
	return n
}

// TestVxlanBetweenTwoSimsOverVeth sends frames from a memif CNF on one vppsim
// through VXLAN over a veth pair to a memif CNF on another: ARP resolves on
// both sides, every frame arrives once, in order, intact; a frame with an
// unknown VNI is counted as such on the receiving uplink.
func TestVxlanBetweenTwoSimsOverVeth(t *testing.T) {
	va, vb := vethPair(t)
	a := newVxNode(t, va, "198.51.100.1", "198.51.100.2", 4242)
	b := newVxNode(t, vb, "198.51.100.2", "198.51.100.1", 4242)
	ca := newSlaveCNF(t, a.e.path("memif.sock"), memif.Config{ID: 1})
	cb := newSlaveCNF(t, b.e.path("memif.sock"), memif.Config{ID: 1})
	ca.waitUp()
	cb.waitUp()

	macA, macB := [6]byte{2, 0, 0, 0, 0, 0xa}, [6]byte{2, 0, 0, 0, 0, 0xb}
	// The first frame resolves the neighbour (VPP drops it meanwhile, too).
	eventually(t, "ARP resolved A→B", func() bool {
		ca.send([][]byte{testFrame(macB, macA, 64, 1<<31)})
		return len(cb.recv(1, 50*time.Millisecond)) == 1
	})
	if a.e.port(a.tun).Drops()[DropARPPending] == 0 {
		t.Errorf("tunnel A: no frame counted under %q before ARP resolved", DropARPPending)
	}
	const n = 500
	want := frames(macB, macA, n, 200)
	for i := 0; i < n; i += 50 {
		ca.send(want[i : i+50])
		time.Sleep(2 * time.Millisecond)
	}
	got := cb.recv(n, 2*time.Second)
	if len(got) != n {
		t.Fatalf("B received %d of %d frames", len(got), n)
	}
	for i, f := range got {
		if string(f[:200]) != string(want[i]) {
			t.Fatalf("frame %d differs (seq %d)", i, binary.BigEndian.Uint32(f[14:]))
		}
	}
	// And back.
	eventually(t, "B→A", func() bool {
		cb.send([][]byte{testFrame(macA, macB, 64, 7)})
		return len(ca.recv(1, 50*time.Millisecond)) == 1
	})
	if c := b.e.port(b.tun).Counters(); c.RxPackets < n {
		t.Errorf("tunnel B rx %d, want ≥ %d", c.RxPackets, n)
	}

	// A tunnel with another VNI on A: B has no tunnel for it.
	ctx := context.Background()
	tr, err := vxlan.NewServiceClient(a.e.conn).VxlanAddDelTunnelV3(ctx, tunnelReq(true, "198.51.100.1", "198.51.100.2", 99))
	if err != nil {
		t.Fatal(err)
	}
	a.e.xconnect(a.memifI, uint32(tr.SwIfIndex), true)
	ca.send([][]byte{testFrame(macB, macA, 64, 9)})
	eventually(t, "unknown VNI counted on B's uplink", func() bool {
		return b.e.port(b.uplink).Drops()[DropVxlanNoTunnel] == 1
	})
	if got := cb.recv(1, 100*time.Millisecond); len(got) != 0 {
		t.Errorf("B's CNF received a frame of an unknown VNI")
	}
}
