package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// vhostPath runs n frames from a memif CNF through xc1 (memif → vhost-user)
// into dpdk-testpmd's virtio-user port 0, forwarded to its port 1, through xc2
// (vhost-user → memif) into a memif sink, and checks the counts at both ends
// and in testpmd. vppServer chooses the socket role of VPP's vhost-user
// interfaces; testpmd takes the other (server=1 when VPP is the client).
func vhostPath(t *testing.T, vppServer bool) {
	forEach(t, func(t *testing.T, e *env) {
		const n = 10000
		v1, v2 := e.lab.Path("vhost1.sock"), e.lab.Path("vhost2.sock")
		nsTP := e.ns("testpmd")
		var tp *testpmd
		if !vppServer {
			// testpmd listens; its virtio-user port 0 blocks in accept until
			// vppsim connects, and only then does port 1 listen: vppsim's client
			// retries until the socket is there.
			tp = e.startTestpmd(nsTP, "testpmd", 1, []string{virtioVdev(0, v1, true), virtioVdev(1, v2, true)}, "io")
		}
		e.putXC("xc1", memifEnd(e.memif, 1), vhostEnd(v1, vppServer))
		e.putXC("xc2", vhostEnd(v2, vppServer), memifEnd(e.memif, 2))
		if vppServer {
			e.waitFile(v1, 20*time.Second)
			e.waitFile(v2, 20*time.Second)
			tp = e.startTestpmd(nsTP, "testpmd", 1, []string{virtioVdev(0, v1, false), virtioVdev(1, v2, false)}, "io")
		}
		e.waitOper("xc1-b", "UP")
		e.waitOper("xc2-a", "UP")
		sink := e.startCNF(e.ns("sink"), "sink", "sink", 2)
		sink.waitLinkUp()
		tp.waitForwarding()
		gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--count", strconv.Itoa(n), "--rate", "5000")
		g := gen.finish(false)
		got := sink.settle()
		vpp := e.showInterfaces()
		ps := tp.stop()
		s := sink.finish(true)
		t.Logf("gen sent %d, testpmd %+v, sink received %d", g.Sent, ps, got)
		if g.Sent != n || got != n || s.clean() != nil || ps[0].RX != n || ps[1].TX != n {
			t.Fatalf("sent %d, testpmd rx %d tx %d, sink received %d (%v)\n%s:\n%s", g.Sent, ps[0].RX, ps[1].TX, got, s.clean(), e.vpp.Name(), vpp)
		}
	})
}

func TestVhostUserVirtioUser(t *testing.T) {
	testpmdPath(t)
	t.Run("vpp-server", func(t *testing.T) { vhostPath(t, true) })
	t.Run("vpp-client", func(t *testing.T) { vhostPath(t, false) })
}

// TestVhostUserBothEnds: a cross-connect with vhost-user on both ends, between
// two testpmds (each forwarding virtio-user port 0 to port 1), fed and drained
// by memif CNFs.
func TestVhostUserBothEnds(t *testing.T) {
	testpmdPath(t)
	forEach(t, func(t *testing.T, e *env) {
		const n = 10000
		v := func(i int) string { return e.lab.Path(fmt.Sprintf("vhost%d.sock", i)) }
		e.putXC("xc1", memifEnd(e.memif, 1), vhostEnd(v(1), true))
		e.putXC("xc2", vhostEnd(v(2), true), vhostEnd(v(3), true))
		e.putXC("xc3", vhostEnd(v(4), true), memifEnd(e.memif, 2))
		for i := 1; i <= 4; i++ {
			e.waitFile(v(i), 20*time.Second)
		}
		tpA := e.startTestpmd(e.ns("testpmd-a"), "testpmd-a", 1, []string{virtioVdev(0, v(1), false), virtioVdev(1, v(2), false)}, "io")
		tpB := e.startTestpmd(e.ns("testpmd-b"), "testpmd-b", 0, []string{virtioVdev(0, v(3), false), virtioVdev(1, v(4), false)}, "io")
		for _, name := range []string{"xc1-b", "xc2-a", "xc2-b", "xc3-a"} {
			e.waitOper(name, "UP")
		}
		sink := e.startCNF(e.ns("sink"), "sink", "sink", 2)
		sink.waitLinkUp()
		tpA.waitForwarding()
		tpB.waitForwarding()
		gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--count", strconv.Itoa(n), "--rate", "5000")
		g := gen.finish(false)
		got := sink.settle()
		vpp := e.showInterfaces()
		a, b := tpA.stop(), tpB.stop()
		s := sink.finish(true)
		t.Logf("gen sent %d, testpmd-a %+v, testpmd-b %+v, sink received %d", g.Sent, a, b, got)
		if g.Sent != n || got != n || s.clean() != nil || a[1].TX != n || b[0].RX != n {
			t.Fatalf("sent %d, across xc2 %d → %d, sink received %d (%v)\n%s:\n%s", g.Sent, a[1].TX, b[0].RX, got, s.clean(), e.vpp.Name(), vpp)
		}
	})
}
