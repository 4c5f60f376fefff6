package vppsim

import (
	"context"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/l2"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// expect checks that each CNF receives exactly the given number of frames.
func expect(t *testing.T, what string, want map[*cnf]int) {
	t.Helper()
	for c, n := range want {
		// Ask for one more than expected so that an extra frame is seen too.
		got := c.recv(n+1, 300*time.Millisecond)
		if len(got) != n {
			t.Fatalf("%s: %s got %d frames, want %d", what, c.ifc.Info().Name, len(got), n)
		}
	}
}

func TestBridgeDomainFloodLearnForwardAge(t *testing.T) {
	e := startPacketSim(t)
	// MAC tables are scanned every housekeeping tick; the bridge "minute" is shortened
	// below, once learning has been checked.
	e.sim.ageScan.Store(0)
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	l2c := l2.NewServiceClient(e.conn)
	ctx := context.Background()
	if _, err := l2c.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{BdID: 5, IsAdd: true,
		Flood: true, UuFlood: true, Forward: true, Learn: true, MacAge: 1}); err != nil {
		t.Fatal(err)
	}
	var idx [3]uint32
	var cnfs [3]*cnf
	for i := range idx {
		idx[i] = e.createMemif(masterMemif(1, uint32(i+1)))
		if _, err := l2c.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{
			RxSwIfIndex: interfaceIndex(idx[i]), BdID: 5, Enable: true}); err != nil {
			t.Fatal(err)
		}
		cnfs[i] = newSlaveCNF(t, sock, memif.Config{ID: uint32(i + 1), Name: []string{"A", "B", "C"}[i]})
	}
	for i := range idx {
		e.waitLink(idx[i], true)
		cnfs[i].waitUp()
	}
	a, b, c := cnfs[0], cnfs[1], cnfs[2]

	a.send(frames(bcast, macA, 3, 64))
	expect(t, "broadcast from A", map[*cnf]int{a: 0, b: 3, c: 3})
	b.send(frames(macA, macB, 4, 64)) // A was learned from its broadcast
	expect(t, "unicast B->A", map[*cnf]int{a: 4, b: 0, c: 0})
	c.send(frames(macB, macC, 2, 64))
	expect(t, "unicast C->B", map[*cnf]int{a: 0, b: 2, c: 0})
	a.send(frames([6]byte{0x02, 0, 0, 0, 0, 0xdd}, macA, 2, 64))
	expect(t, "unknown unicast from A", map[*cnf]int{a: 0, b: 2, c: 2})

	// After mac_age (one "minute", 100ms here) without traffic from A, A's entry is
	// gone and frames to it flood.
	e.sim.macAgeUnit.Store(int64(100 * time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	b.send(frames(macA, macB, 1, 64))
	expect(t, "unicast to an aged MAC", map[*cnf]int{a: 1, b: 0, c: 1})
	eventually(t, "B tx packets 7", func() bool { return e.port(idx[1]).TxPackets() == 3+2+2 })
}
