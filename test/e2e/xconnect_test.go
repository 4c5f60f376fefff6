package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestCrossConnectMemif: two CNFs in their own namespaces, one CrossConnect
// put with agentctl; every frame generated arrives in order, the agent's
// counters and the etcd status agree; deleting the cross-connect stops the
// traffic and putting it back restores it.
func TestCrossConnectMemif(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		const n = 20000
		sink := e.startCNF(e.ns("sink"), "sink", "sink", 2)
		e.putXC("xc1", memifEnd(e.memif, 1), memifEnd(e.memif, 2))
		sink.waitLinkUp()

		gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--count", strconv.Itoa(n), "--rate", "50000")
		g := gen.finish(false)
		if g.Sent != n {
			t.Fatalf("generator sent %d of %d", g.Sent, n)
		}
		s := sink.waitReceived(n)
		if err := s.clean(); err != nil {
			t.Fatalf("sink: %v", err)
		}
		if got := sink.settle(); got != n {
			t.Fatalf("sink received %d, sent %d", got, n)
		}

		// The agent reads the same counts from VPP's stats segment.
		e.eventually("agentctl stats shows the frames", 15*time.Second, func() error {
			r, err := e.counters()
			if err != nil {
				return err
			}
			x, ok := r.CrossConnects["xc1"]
			if !ok {
				return fmt.Errorf("no xc1 in %+v", r)
			}
			if x.AtoB.RxPackets != n || x.AtoB.TxPackets != n || x.Drops != 0 {
				return fmt.Errorf("xc1 a→b in %d out %d drops %d, want %d", x.AtoB.RxPackets, x.AtoB.TxPackets, x.Drops, n)
			}
			return nil
		})
		e.eventually("etcd status of xc1 has the counters", 15*time.Second, func() error {
			x, err := e.xcStatusCounters("xc1")
			if err != nil {
				return err
			}
			if x.AtoB.RxPackets != n || x.AtoB.TxPackets != n {
				return fmt.Errorf("status counters a→b in %d out %d, want %d", x.AtoB.RxPackets, x.AtoB.TxPackets, n)
			}
			return nil
		})

		// A generator that keeps sending across delete and re-add.
		gen2 := e.startCNF(e.ns("gen2"), "gen2", "gen", 1, "--rate", "20000", "--stream", "7")
		gen2.waitLinkUp()
		sink.waitReceived(n + 2000)
		e.del(xcKey("xc1"))
		e.waitGone(xcKey("xc1"))
		stopped := sink.settle()
		time.Sleep(time.Second) // gen2 is still sending: nothing may arrive
		if s, err := sink.live(); err != nil || s.Received != stopped {
			t.Fatalf("traffic continued after delete: %d then %d (%v)", stopped, s.Received, err)
		}

		e.putXC("xc1", memifEnd(e.memif, 1), memifEnd(e.memif, 2))
		sink.waitReceived(stopped + 2000)
		g2 := gen2.finish(true)
		final := sink.finish(true)
		if final.Duplicates != 0 || final.Reordered != 0 {
			t.Fatalf("sink after re-add: %+v", final)
		}
		if final.Received > g.Sent+g2.Sent {
			t.Fatalf("sink received %d, more than sent %d", final.Received, g.Sent+g2.Sent)
		}
		t.Logf("before delete %d frames, stopped at %d, after re-add %d (gen2 sent %d)", n, stopped, final.Received, g2.Sent)
	})
}
