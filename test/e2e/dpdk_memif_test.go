package e2e

import (
	"strconv"
	"testing"
)

// TestDPDKMemifInterop puts DPDK's memif PMD (dpdk-testpmd, io forwarding, a
// memif client of VPP) in the path: the Go CNF generates on one side of a
// cross-connect, testpmd forwards between two cross-connects, the Go CNF sinks.
// Every count along the path must be equal. Then with a second testpmd, so one
// cross-connect has testpmd on both sides.
func TestDPDKMemifInterop(t *testing.T) {
	testpmdPath(t)
	const n = 10000
	t.Run("testpmd-and-cnf", func(t *testing.T) {
		forEach(t, func(t *testing.T, e *env) {
			e.putXC("xc1", memifEnd(e.memif, 1), memifEnd(e.memif, 2))
			e.putXC("xc2", memifEnd(e.memif, 3), memifEnd(e.memif, 4))
			sink := e.startCNF(e.ns("sink"), "sink", "sink", 4)
			tp := e.startTestpmd(e.ns("testpmd"), "testpmd", 1, []string{
				memifVdev(0, e.memif, 2, "client", 12), memifVdev(1, e.memif, 3, "client", 12)}, "io")
			e.waitOper("xc1-b", "UP")
			e.waitOper("xc2-a", "UP")
			sink.waitLinkUp()
			tp.waitForwarding()
			gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--count", strconv.Itoa(n), "--rate", "5000")
			g := gen.finish(false)
			got := sink.settle()
			ps := tp.stop()
			s := sink.finish(true)
			t.Logf("gen sent %d, testpmd %+v, sink received %d", g.Sent, ps, got)
			if g.Sent != n || got != n || s.clean() != nil {
				t.Fatalf("sent %d received %d (%v)", g.Sent, got, s.clean())
			}
			if ps[0].RX != n || ps[1].TX != n {
				t.Fatalf("testpmd port 0 RX %d, port 1 TX %d, want %d", ps[0].RX, ps[1].TX, n)
			}
		})
	})
	t.Run("testpmd-both-sides", func(t *testing.T) {
		forEach(t, func(t *testing.T, e *env) {
			e.putXC("xc1", memifEnd(e.memif, 1), memifEnd(e.memif, 2))
			e.putXC("xc2", memifEnd(e.memif, 3), memifEnd(e.memif, 4))
			e.putXC("xc3", memifEnd(e.memif, 5), memifEnd(e.memif, 6))
			sink := e.startCNF(e.ns("sink"), "sink", "sink", 6)
			tpA := e.startTestpmd(e.ns("testpmd-a"), "testpmd-a", 1, []string{
				memifVdev(0, e.memif, 2, "client", 12), memifVdev(1, e.memif, 3, "client", 12)}, "io")
			tpB := e.startTestpmd(e.ns("testpmd-b"), "testpmd-b", 0, []string{
				memifVdev(0, e.memif, 4, "client", 12), memifVdev(1, e.memif, 5, "client", 12)}, "io")
			for _, name := range []string{"xc1-b", "xc2-a", "xc2-b", "xc3-a"} {
				e.waitOper(name, "UP")
			}
			sink.waitLinkUp()
			tpA.waitForwarding()
			tpB.waitForwarding()
			gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--count", strconv.Itoa(n), "--rate", "5000")
			g := gen.finish(false)
			got := sink.settle()
			t.Logf("%s:\n%s", e.vpp.Name(), e.showInterfaces())
			a, b := tpA.stop(), tpB.stop()
			s := sink.finish(true)
			t.Logf("gen sent %d, testpmd-a %+v, testpmd-b %+v, sink received %d", g.Sent, a, b, got)
			if g.Sent != n || got != n || s.clean() != nil {
				t.Fatalf("sent %d received %d (%v)", g.Sent, got, s.clean())
			}
			// xc2 joins testpmd-a's port 1 to testpmd-b's port 0.
			if a[1].TX != n || b[0].RX != n {
				t.Fatalf("across xc2: testpmd-a sent %d, testpmd-b received %d, want %d", a[1].TX, b[0].RX, n)
			}
		})
	})
}
