package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestVPPCrashTrafficResumes: traffic runs through a cross-connect when VPP
// dies with kill -9 and starts again empty. The agent reconnects and puts
// the cross-connect back, the CNFs' memifs reconnect, frames flow again,
// interface oper state is UP in etcd again, and the agent reads counters
// from the new VPP's stats segment.
func TestVPPCrashTrafficResumes(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sink := e.startCNF(e.ns("sink"), "sink", "sink", 2)
		e.putXC("xc1", memifEnd(e.memif, 1), memifEnd(e.memif, 2))
		sink.waitLinkUp()
		gen := e.startCNF(e.ns("gen"), "gen", "gen", 1, "--rate", "5000")
		sink.waitReceived(2000)
		var before uint64
		e.eventually("counters before the crash", 15*time.Second, func() error {
			r, err := e.counters()
			if err != nil {
				return err
			}
			if before = r.CrossConnects["xc1"].AtoB.RxPackets; before < 1000 {
				return fmt.Errorf("xc1 a→b rx %d", before)
			}
			return nil
		})

		e.vpp.Kill()
		ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
		defer cancel()
		if err := e.vpp.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		stalled, err := sink.live()
		if err != nil {
			t.Fatal(err)
		}
		e.waitOper("xc1-a", "UP")
		e.waitOper("xc1-b", "UP")
		for _, name := range []string{"xc1-a", "xc1-b"} {
			e.eventually(name+" admin up in VPP", 20*time.Second, func() error {
				i, ok, err := e.vpp.InterfaceByTag(ctx, name)
				if err != nil || !ok || !i.AdminUp || !i.LinkUp {
					return fmt.Errorf("in VPP: %+v %v %v", i, ok, err)
				}
				return nil
			})
			e.eventually(name+" admin UP in etcd", 20*time.Second, func() error {
				var st map[string]any
				if ok, err := e.get("vpp/status/v2/interface/"+name, &st); err != nil || !ok {
					return fmt.Errorf("no status (%v)", err)
				}
				for _, k := range []string{"admin_status", "adminStatus"} {
					if st[k] == "UP" {
						return nil
					}
				}
				return fmt.Errorf("status %v", st)
			})
		}
		sink.waitReceived(stalled.Received + 2000)
		e.eventually("counters read from the restarted VPP", 20*time.Second, func() error {
			r, err := e.counters()
			if err != nil {
				return err
			}
			x := r.CrossConnects["xc1"]
			if !r.Connected || x.AtoB.RxPackets == 0 || x.AtoB.TxPackets == 0 {
				return fmt.Errorf("connected %v, xc1 a→b rx %d tx %d", r.Connected, x.AtoB.RxPackets, x.AtoB.TxPackets)
			}
			return nil
		})
		g := gen.finish(true)
		s := sink.finish(true)
		t.Logf("%s: sent %d, received %d (%d by the time VPP was back, %d lost across the crash); agent counted %d before",
			e.vpp.Name(), g.Sent, s.Received, stalled.Received, s.Lost, before)
		if s.Duplicates != 0 || s.Received > g.Sent {
			t.Fatalf("sink after the VPP crash: %+v (sent %d)", s, g.Sent)
		}
	})
}
