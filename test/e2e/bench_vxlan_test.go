package e2e

import (
	"fmt"
	"time"
)

// vxlanCase: cnf gen → memif → vppsim A → VXLAN over a veth pair (AF_PACKET
// on both ends) → vppsim B → memif → cnf sink, two nodes as in the
// multi-node lab (TestVxlanTwoNodes), beside two dpdk-testpmd (io
// forwarding between a memif server port and a net_af_packet port, one per
// node, on a second veth pair so the vppsims' packet sockets do not see
// their frames) between the same peers. The testpmd path moves the same
// frames over the same kind of link without encapsulation (50 bytes less
// per frame): the ratio is the cost of vppsim's VXLAN path plus its
// AF_PACKET socket I/O against DPDK's af_packet PMD.
func (b *bencher) vxlanCase(runs, n int) benchCase {
	e := b.e
	t := e.t
	t.Helper()
	const ring = 1024
	tn := newTwoNodes(t)
	a, z := tn.node(0, "vppsim"), tn.node(1, "vppsim")
	a.putXC("benchvx", memifEnd(a.memif, 1, "ring_size", ring), vxlanEnd(underlayB, vxVNI))
	z.putXC("benchvx", memifEnd(z.memif, 1, "ring_size", ring), vxlanEnd(underlayA, vxVNI))
	// ARP resolves on the first frames (dropped meanwhile), before any run.
	a.startCNF(tn.ns[0], "bvx-warm", "gen", 1, "--count", "50", "--rate", "500").finish(false)
	tp := [2]string{tn.veth[0] + "t", tn.veth[1] + "t"}
	tn.ip("-n", tn.ns[0].Name, "link", "add", tp[0], "type", "veth", "peer", "name", tp[1], "netns", tn.ns[1].Name)
	for i := range 2 {
		tn.quiet(i, tp[i])
		tn.ip("-n", tn.ns[i].Name, "link", "set", tp[i], "up")
	}

	c := benchCase{Name: "memif-vxlan-64B-ring1024", Path: "cnf gen → memif → [middle A] → veth (vppsim: VXLAN over AF_PACKET; testpmd: io over net_af_packet) → [middle B] → memif → cnf sink",
		FrameSize: 64, RingSize: ring, Frames: n}
	for r := 0; r < runs; r++ {
		for _, vpp := range []bool{r%2 == 0, r%2 != 0} {
			if vpp {
				pps, lost := b.pass(a.memif, 1, z.memif, 1, 64, ring, n)
				c.VPPSim.PPS, c.VPPSim.Lost = append(c.VPPSim.PPS, pps), append(c.VPPSim.Lost, lost)
				continue
			}
			var mids [2]*testpmd
			socks := [2]string{tn.lab.Path(fmt.Sprintf("tpvx-a-%d.sock", r)), tn.lab.Path(fmt.Sprintf("tpvx-b-%d.sock", r))}
			for i := range 2 {
				mids[i] = e.startTestpmd(tn.ns[i], fmt.Sprintf("tpvx-%c-%d", 'a'+i, r), i, []string{
					memifVdev(0, socks[i], 1, "server", 10), "net_af_packet0,iface=" + tp[i] + ",qpairs=1"}, "io")
			}
			for i := range 2 {
				e.waitFile(socks[i], 20*time.Second)
			}
			pps, lost := b.pass(socks[0], 1, socks[1], 1, 64, ring, n)
			for i := range 2 {
				mids[i].halt()
			}
			c.Testpmd.PPS, c.Testpmd.Lost = append(c.Testpmd.PPS, pps), append(c.Testpmd.Lost, lost)
		}
	}
	finishCase(&c)
	t.Logf("%s: vppsim %.0f pps, testpmd %.0f pps, ratio %.2f", c.Name, c.VPPSim.MedianPPS, c.Testpmd.MedianPPS, c.Ratio)
	return c
}
