package e2e

import (
	"testing"
)

// TestVhostUserReconnect kills the virtio-user frontend (testpmd) in the
// middle of traffic and starts it again: the vhost-user interfaces go down and
// come back up in etcd, traffic through them resumes, and a memif
// cross-connect beside them loses nothing meanwhile.
func TestVhostUserReconnect(t *testing.T) {
	testpmdPath(t)
	forEach(t, func(t *testing.T, e *env) {
		v1, v2 := e.lab.Path("vhost1.sock"), e.lab.Path("vhost2.sock")
		e.putXC("xc1", memifEnd(e.memif, 1), vhostEnd(v1, true))
		e.putXC("xc2", vhostEnd(v2, true), memifEnd(e.memif, 2))
		e.putXC("other", memifEnd(e.memif, 3), memifEnd(e.memif, 4))
		nsTP := e.ns("testpmd")
		vdevs := []string{virtioVdev(0, v1, false), virtioVdev(1, v2, false)}
		tp := e.startTestpmd(nsTP, "testpmd", 1, vdevs, "io")
		e.waitOper("xc1-b", "UP")
		e.waitOper("xc2-a", "UP")
		tp.waitForwarding()

		sink1 := e.startCNF(e.ns("sink1"), "sink1", "sink", 2)
		sink2 := e.startCNF(e.ns("sink2"), "sink2", "sink", 4)
		sink1.waitLinkUp()
		sink2.waitLinkUp()
		gen1 := e.startCNF(e.ns("gen1"), "gen1", "gen", 1, "--rate", "5000")
		gen2 := e.startCNF(e.ns("gen2"), "gen2", "gen", 3, "--rate", "5000", "--stream", "2")
		sink1.waitReceived(2000)
		sink2.waitReceived(2000)

		tp.p.Kill() // a crash: no goodbye on the vhost-user socket
		e.waitOper("xc1-b", "DOWN")
		e.waitOper("xc2-a", "DOWN")
		stalled := sink1.settle()
		if up, err := e.operStatus("other-a"); err != nil || up != "UP" {
			t.Fatalf("the other cross-connect's interface is %q (%v) while testpmd is gone", up, err)
		}

		tp = e.startTestpmd(nsTP, "testpmd", 1, vdevs, "io")
		e.waitOper("xc1-b", "UP")
		e.waitOper("xc2-a", "UP")
		tp.waitForwarding()
		sink1.waitReceived(stalled + 2000)

		g1, g2 := gen1.finish(true), gen2.finish(true)
		s2 := sink2.settle()
		r2 := sink2.finish(true)
		r1 := sink1.finish(true)
		ps := tp.stop()
		t.Logf("through vhost-user: sent %d, %d before the kill, %d at the end (lost while down %d); beside it: sent %d received %d; testpmd after restart %+v",
			g1.Sent, stalled, r1.Received, r1.Lost, g2.Sent, s2, ps)
		if r1.Duplicates != 0 || r1.Reordered != 0 {
			t.Fatalf("vhost-user path after reconnect: %+v", r1)
		}
		if s2 != g2.Sent || r2.clean() != nil {
			t.Fatalf("the other cross-connect was disturbed: sent %d received %d (%v)", g2.Sent, s2, r2.clean())
		}
	})
}
