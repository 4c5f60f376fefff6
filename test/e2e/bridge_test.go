package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/vppmesh/vppmesh/test/lab"
)

// TestBridgeDomainThreeCNFs: three CNFs on three memif interfaces in one
// bridge domain (Ligato keys). Each CNF takes a turn sending to another's MAC:
// the first frames to an unknown MAC flood to both others; once the bridge has
// learned a MAC from a sender, frames to it reach only that CNF.
func TestBridgeDomainThreeCNFs(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		const n = 5000
		names := []string{"bdm-a", "bdm-b", "bdm-c"}
		macs := []string{"02:fe:00:00:0a:01", "02:fe:00:00:0a:02", "02:fe:00:00:0a:03"}
		var members []map[string]any
		for i, name := range names {
			e.put("config/vpp/v2/interfaces/"+name, map[string]any{"name": name, "type": "MEMIF", "enabled": true,
				"memif": map[string]any{"master": true, "id": 11 + i, "socket_filename": e.memif}})
			members = append(members, map[string]any{"name": name})
		}
		e.put("config/vpp/l2/v2/bridge-domain/bd1", map[string]any{"name": "bd1", "flood": true,
			"unknown_unicast_flood": true, "forward": true, "learn": true, "interfaces": members})
		e.waitState("config/vpp/l2/v2/bridge-domain/bd1", "CONFIGURED")
		nss := []*lab.Namespace{e.ns("cnf-a"), e.ns("cnf-b"), e.ns("cnf-c")}

		// phase: CNF from sends n frames to dst's MAC; want lists who must get them.
		phase := func(step, from, dst int, want map[int]bool) {
			t.Helper()
			sinks := map[int]*cnf{}
			for i := range names {
				if i == from {
					continue
				}
				sinks[i] = e.startCNF(nss[i], fmt.Sprintf("sink%d-%s", step, names[i]), "sink", 11+i)
			}
			for _, s := range sinks {
				s.waitLinkUp()
			}
			gen := e.startCNF(nss[from], fmt.Sprintf("gen%d-%s", step, names[from]), "gen", 11+from,
				"--count", strconv.Itoa(n), "--rate", "20000", "--stream", strconv.Itoa(step),
				"--src-mac", macs[from], "--dst-mac", macs[dst])
			if g := gen.finish(false); g.Sent != n {
				t.Fatalf("step %d: %s sent %d of %d", step, names[from], g.Sent, n)
			}
			for i, s := range sinks {
				if want[i] {
					s.waitReceived(n)
				}
			}
			for i, s := range sinks {
				got := s.settle()
				sum := s.finish(true)
				switch {
				case want[i] && (got != n || sum.clean() != nil):
					t.Fatalf("step %d: %s → %s: %s received %d of %d (%v)", step, names[from], macs[dst], names[i], got, n, sum.clean())
				case !want[i] && got != 0:
					t.Fatalf("step %d: %s → %s: %s received %d frames meant for another CNF", step, names[from], macs[dst], names[i], got)
				}
			}
		}
		phase(1, 0, 1, map[int]bool{1: true, 2: true}) // a→b: b unknown, flooded to b and c; a learned
		phase(2, 1, 0, map[int]bool{0: true})          // b→a: a learned, unicast; b learned
		phase(3, 2, 1, map[int]bool{1: true})          // c→b: unicast; c learned
		phase(4, 0, 2, map[int]bool{2: true})          // a→c: unicast
	})
}
