package vppsim

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	vppmemif "go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/core"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	macC = [6]byte{0x02, 0, 0, 0, 0, 0x0c}
)

func masterMemif(socketID, id uint32) *vppmemif.MemifCreateV2 {
	return &vppmemif.MemifCreateV2{Role: vppmemif.MEMIF_ROLE_API_MASTER, ID: id, SocketID: socketID}
}

// xcPair is two vppsim memif masters on one socket, cross-connected both ways, each with
// a Go slave CNF connected.
type xcPair struct {
	a, b   uint32
	ca, cb *cnf
}

func newXCPair(t testing.TB, e *pktEnv, mode vppmemif.MemifMode, cfgA, cfgB memif.Config) xcPair {
	t.Helper()
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	ma, mb := masterMemif(1, 1), masterMemif(1, 2)
	ma.Mode, mb.Mode = mode, mode
	p := xcPair{a: e.createMemif(ma), b: e.createMemif(mb)}
	e.xconnect(p.a, p.b, true)
	e.xconnect(p.b, p.a, true)
	cfgA.ID, cfgB.ID = 1, 2
	p.ca, p.cb = newSlaveCNF(t, sock, cfgA), newSlaveCNF(t, sock, cfgB)
	e.waitLink(p.a, true)
	e.waitLink(p.b, true)
	p.ca.waitUp()
	p.cb.waitUp()
	return p
}

// through sends n frames from one CNF and checks the other receives them all, in order
// and unchanged.
func through(t *testing.T, from, to *cnf, fs [][]byte) {
	t.Helper()
	from.send(fs)
	got := to.recv(len(fs), 2*time.Second)
	if len(got) != len(fs) {
		t.Fatalf("sent %d frames, received %d", len(fs), len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], fs[i]) {
			t.Fatalf("frame %d changed or reordered: seq %d, len %d want %d", i, seqs(got[i : i+1])[0], len(got[i]), len(fs[i]))
		}
	}
}

func cli(t *testing.T, e *pktEnv, cmd string) string {
	t.Helper()
	rep, err := vlib.NewServiceClient(e.conn).CliInband(context.Background(), &vlib.CliInband{Cmd: cmd})
	if err != nil {
		t.Fatalf("cli_inband %q: %v", cmd, err)
	}
	return rep.Reply
}

func TestMemifXconnectCountsEqualEverywhere(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	const n = 500
	through(t, p.ca, p.cb, frames(macB, macA, n, 64))
	through(t, p.cb, p.ca, frames(macA, macB, n, 1500))

	want := Counters{RxPackets: n, RxBytes: n * 64, TxPackets: n, TxBytes: n * 1500}
	eventually(t, "tx counted", func() bool { return e.counters(p.a).TxPackets == n && e.counters(p.b).TxPackets == n })
	ca, cb := e.counters(p.a), e.counters(p.b)
	if ca != want {
		t.Errorf("memif1/1 counters %+v, want %+v", ca, want)
	}
	if want := (Counters{RxPackets: n, RxBytes: n * 1500, TxPackets: n, TxBytes: n * 64}); cb != want {
		t.Errorf("memif1/2 counters %+v, want %+v", cb, want)
	}
	out := cli(t, e, "show interface memif1/1")
	for _, re := range []string{`rx packets\s+500\n`, `rx bytes\s+32000\n`, `tx packets\s+500\n`, `tx bytes\s+750000\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("show interface lacks %s:\n%s", re, out)
		}
	}
	if regexp.MustCompile(`drops`).MatchString(out) {
		t.Errorf("drops shown without drops:\n%s", out)
	}

	// govpp's stats client reads the same numbers from the stats segment.
	sc, err := core.ConnectStats(statsclient.NewStatsClient(e.path("stats.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Disconnect()
	var st api.InterfaceStats
	deadline := time.Now().Add(3 * time.Second)
	for {
		if err := sc.GetInterfaceStats(&st); err != nil {
			t.Fatal(err)
		}
		if got := statsOf(st, p.b); got.Rx.Packets == n && got.Tx.Packets == n {
			if got.InterfaceName != "memif1/2" || got.Rx.Bytes != n*1500 || got.Tx.Bytes != n*64 || got.Drops != 0 {
				t.Errorf("stats segment row %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats segment never showed the counters: %+v", statsOf(st, p.b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statsOf(st api.InterfaceStats, idx uint32) api.InterfaceCounters {
	for _, c := range st.Interfaces {
		if c.InterfaceIndex == idx {
			return c
		}
	}
	return api.InterfaceCounters{}
}

func TestMemifVPPSlaveRoleWithTwoQueues(t *testing.T) {
	e := startPacketSim(t)
	// The CNF is the master of its own socket; vppsim dials it.
	cnfSock := e.path("cnf.sock")
	s, err := memif.Listen(cnfSock, e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := memif.NewMaster(s, memif.Config{ID: 7, Secret: "pw", Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Connect(); err != nil {
		t.Fatal(err)
	}
	e.memifSocket(2, cnfSock)
	slave := e.createMemif(&vppmemif.MemifCreateV2{Role: vppmemif.MEMIF_ROLE_API_SLAVE, ID: 7, SocketID: 2,
		Secret: "pw", RxQueues: 2, TxQueues: 2, RingSize: 512, BufferSize: 1024})
	// The other end: a vppsim master with a slave CNF.
	e.memifSocket(1, e.path("memif.sock"))
	master := e.createMemif(masterMemif(1, 1))
	e.xconnect(slave, master, true)
	e.xconnect(master, slave, true)
	peer := newSlaveCNF(t, e.path("memif.sock"), memif.Config{ID: 1})
	e.waitLink(slave, true)
	e.waitLink(master, true)
	peer.waitUp()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if info.RxQueues != 2 || info.TxQueues != 2 || info.RingSize != 512 {
		t.Fatalf("vppsim slave negotiated %+v, want 2 queues each way, ring 512", info)
	}
	// Frames on the CNF master's second queue reach vppsim's second rx queue.
	fs := frames(macB, macA, 300, 1200) // 1200 > 1024: chained buffers
	cm := &cnf{t: t, ifc: m}
	rest := fs
	for len(rest) > 0 {
		n, err := m.TxQueues()[1].TxBurst(rest)
		if err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if got := peer.recv(len(fs), 2*time.Second); len(got) != len(fs) {
		t.Fatalf("queue 1 -> peer: %d of %d", len(got), len(fs))
	}
	through(t, peer, cm, frames(macA, macB, 300, 64))
	eventually(t, "tx counted", func() bool { return e.counters(slave).TxPackets == 300 })
	if c := e.counters(slave); c.RxPackets != 300 || c.TxPackets != 300 || c.Drops != 0 {
		t.Errorf("vppsim slave counters %+v", c)
	}
}

func TestMemifIPMode(t *testing.T) {
	e := startPacketSim(t)
	ip := memif.Config{Mode: memif.ModeIP}
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_IP, ip, ip)
	pkts := make([][]byte, 100)
	for i := range pkts {
		pkt := make([]byte, 40+i)
		pkt[0] = 0x45 // IPv4, no Ethernet header in IP mode
		pkt[1] = byte(i)
		pkts[i] = pkt
	}
	p.ca.send(pkts)
	got := p.cb.recv(len(pkts), 2*time.Second)
	if len(got) != len(pkts) {
		t.Fatalf("IP mode: %d of %d packets", len(got), len(pkts))
	}
	for i := range got {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("packet %d changed", i)
		}
	}
	if mode := cli(t, e, "show memif"); !regexp.MustCompile(`id 1 mode ip`).MatchString(mode) {
		t.Errorf("show memif: %s", mode)
	}
}

func TestMemifSecretMismatchKeepsLinkDown(t *testing.T) {
	e := startPacketSim(t)
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	m := masterMemif(1, 1)
	m.Secret = "right"
	idx := e.createMemif(m)
	wrong := newSlaveCNF(t, sock, memif.Config{ID: 1, Secret: "wrong"})
	e.noLinkUp(idx, 500*time.Millisecond)
	if wrong.ifc.IsUp() {
		t.Fatal("slave with the wrong secret is up")
	}
	wrong.ifc.Close()
	newSlaveCNF(t, sock, memif.Config{ID: 1, Secret: "right"}).waitUp()
	e.waitLink(idx, true)
}

func TestMemifJumboFramesChain(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	through(t, p.ca, p.cb, frames(macB, macA, 50, 9000))
	through(t, p.cb, p.ca, frames(macA, macB, 50, 9000))
	eventually(t, "tx counted", func() bool { return e.counters(p.a).TxPackets == 50 })
	if c := e.counters(p.a); c.RxBytes != 50*9000 || c.TxBytes != 50*9000 {
		t.Errorf("counters %+v", c)
	}
}

func TestMemifAdminDownAndXconnectDeleteStopTraffic(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	through(t, p.ca, p.cb, frames(macB, macA, 10, 64))

	e.adminUp(p.a, false)
	p.ca.send(frames(macB, macA, 10, 64))
	if got := p.cb.recv(10, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("admin down: %d frames crossed", len(got))
	}
	if d := e.port(p.a).Drops()[DropAdminDown]; d != 10 {
		t.Errorf("admin-down drops %d, want 10", d)
	}
	e.adminUp(p.a, true)
	through(t, p.ca, p.cb, frames(macB, macA, 10, 64))

	e.xconnect(p.a, p.b, false)
	p.ca.send(frames(macB, macA, 10, 64))
	if got := p.cb.recv(10, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("xconnect deleted: %d frames crossed", len(got))
	}
	if d := e.port(p.a).Drops()[DropNotL2]; d != 10 {
		t.Errorf("not-l2 drops %d, want 10", d)
	}
	if out := cli(t, e, "show errors"); !regexp.MustCompile(`10\s+memif1/1\s+l3 not supported`).MatchString(out) {
		t.Errorf("show errors:\n%s", out)
	}
	e.xconnect(p.a, p.b, true)
	through(t, p.ca, p.cb, frames(macB, macA, 10, 64))
	// The other direction was never touched.
	through(t, p.cb, p.ca, frames(macA, macB, 10, 64))
}

func TestMemifPeerReconnectResumesTraffic(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	through(t, p.ca, p.cb, frames(macB, macA, 20, 64))
	if err := p.cb.ifc.Disconnect(); err != nil {
		t.Fatal(err)
	}
	e.waitLink(p.b, false)
	p.ca.send(frames(macB, macA, 20, 64))
	deadline := time.Now().Add(2 * time.Second)
	// VPP counts frames for a link-down egress as drops of the receiving interface.
	for e.port(p.a).Drops()[DropLinkDown] != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("link-down drops %v, want 20", e.port(p.a).Drops())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cb.ifc.Connect(); err != nil {
		t.Fatal(err)
	}
	e.waitLink(p.b, true)
	p.cb.waitUp()
	through(t, p.ca, p.cb, frames(macB, macA, 20, 64))
	through(t, p.cb, p.ca, frames(macA, macB, 20, 64))
}

func TestMemifDeleteFreesSharedSocket(t *testing.T) {
	e := startPacketSim(t)
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	a, b := e.createMemif(masterMemif(1, 1)), e.createMemif(masterMemif(1, 2))
	c := newSlaveCNF(t, sock, memif.Config{ID: 2})
	e.waitLink(b, true)
	c.waitUp()
	mc := vppmemif.NewServiceClient(e.conn)
	if _, err := mc.MemifDelete(context.Background(), &vppmemif.MemifDelete{SwIfIndex: interfaceIndex(a)}); err != nil {
		t.Fatal(err)
	}
	// The socket still serves the remaining interface.
	if !c.ifc.IsUp() || !socketExists(sock) {
		t.Fatal("deleting one memif closed the shared socket")
	}
	if _, err := mc.MemifDelete(context.Background(), &vppmemif.MemifDelete{SwIfIndex: interfaceIndex(b)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ifc.WaitDown(ctx); err != nil {
		t.Fatalf("peer stayed up after its interface was deleted: %v", err)
	}
	if socketExists(sock) {
		t.Error("socket file left after the last memif on it was deleted")
	}
	if _, err := mc.MemifSocketFilenameAddDelV2(context.Background(), &vppmemif.MemifSocketFilenameAddDelV2{SocketID: 1}); err != nil {
		t.Fatal(err)
	}
	// Register again and a new interface listens again.
	e.memifSocket(1, sock)
	e.createMemif(masterMemif(1, 3))
	newSlaveCNF(t, sock, memif.Config{ID: 3}).waitUp()
}

// TestMemifForwardingAllocatesNothing measures the forwarding path from a received
// batch to the egress memif ring, and the CNF draining it, with real drivers.
func TestMemifForwardingAllocatesNothing(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	batch := frames(macB, macA, 32, 64)
	in := e.port(p.a)
	q := p.cb.ifc.RxQueues()[0]
	bufs := make([][]byte, 64)
	backing := make([][]byte, 64)
	for i := range backing {
		backing[i] = make([]byte, 2048)
	}
	allocs := testing.AllocsPerRun(200, func() {
		in.ReceiveBurst(batch)
		copy(bufs, backing)
		if n, err := q.RxBurst(bufs); err != nil || n != len(batch) {
			t.Fatalf("drained %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d frames", allocs, len(batch))
	}
	if c := e.counters(p.b); c.TxPackets < 201*32 || c.Drops != 0 {
		t.Errorf("egress counters %+v", c)
	}
}

// TestRestartDropsPeersAndCounters: a VPP restart loses interfaces, so CNFs lose their
// link and the stats segment starts again from zero.
func TestRestartDropsPeersAndCounters(t *testing.T) {
	e := startPacketSim(t)
	p := newXCPair(t, e, vppmemif.MEMIF_MODE_API_ETHERNET, memif.Config{}, memif.Config{})
	through(t, p.ca, p.cb, frames(macB, macA, 10, 64))
	if err := e.sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.ca.ifc.WaitDown(ctx); err != nil {
		t.Fatalf("CNF link stayed up after restart: %v", err)
	}
	if socketExists(e.path("memif.sock")) {
		t.Error("memif socket survived the restart")
	}
	sc, err := core.ConnectStats(statsclient.NewStatsClient(e.path("stats.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Disconnect()
	var st api.InterfaceStats
	if err := sc.GetInterfaceStats(&st); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Interfaces {
		if c.InterfaceIndex != 0 && c.InterfaceName != "" {
			t.Errorf("interface %d %q in the stats segment after restart", c.InterfaceIndex, c.InterfaceName)
		}
		if c.Rx.Packets != 0 {
			t.Errorf("counters survived the restart: %+v", c)
		}
	}
}
