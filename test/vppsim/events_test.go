package vppsim

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/codec"
)

// An event subscriber whose queue is full of its own dump details is not disconnected
// (VPP queues events in the client's output vector): it gets every detail, the ping
// reply and every event, events in the order they happened.
func TestSubscriberBusyWithDumpKeepsConnectionAndEvents(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	ic := interfaces.NewServiceClient(conn)
	const nIfaces, nEvents = 3000, 50
	var idx []interface_types.InterfaceIndex
	sim.stMu.Lock()
	for i := 0; i < nIfaces; i++ {
		idx = append(idx, interface_types.InterfaceIndex(sim.st.createLoopback(sim.st.freeInstance(kindLoopback), [6]byte{}).idx))
	}
	sim.st.takeEvents() // the creation events: nobody subscribed yet
	sim.stMu.Unlock()

	rc := dialRaw(t, sim)
	rc.handshake()
	rc.send(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 5}, 2)
	if _, err := rc.recv(); err != nil {
		t.Fatal(err)
	}
	rc.send(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}, 3)
	rc.send(&memclnt.ControlPing{}, 3)
	// Wait until the subscriber's queue is full of details it has not read.
	sim.mu.Lock()
	sc := sim.clients[rc.index]
	sim.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for len(sc.out) < cap(sc.out) {
		if time.Now().After(deadline) {
			t.Fatalf("queue never filled: %d of %d", len(sc.out), cap(sc.out))
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < nEvents; i++ {
		if _, err := ic.SwInterfaceSetFlags(context.Background(), setFlags(uint32(idx[i]), true)); err != nil {
			t.Fatal(err)
		}
	}

	detailsID := sim.table.byName["sw_interface_details"].id
	pingID := sim.table.byName["control_ping_reply"].id
	eventID := sim.table.byName["sw_interface_event"].id
	details, pings := 0, 0
	var events []uint32
	for details < nIfaces+1 || pings < 1 || len(events) < nEvents {
		msg, err := rc.recv()
		if err != nil {
			t.Fatalf("after %d details, %d pings, %d events: %v", details, pings, len(events), err)
		}
		switch binary.BigEndian.Uint16(msg) {
		case detailsID:
			details++
		case pingID:
			pings++
		case eventID:
			var ev interfaces.SwInterfaceEvent
			if err := codec.DefaultCodec.DecodeMsg(msg, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.PID != 5 || ev.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP == 0 {
				t.Errorf("event %+v", ev)
			}
			events = append(events, uint32(ev.SwIfIndex))
		}
	}
	if pings != 1 || details != nIfaces+1 {
		t.Errorf("details = %d, pings = %d", details, pings)
	}
	for i, got := range events {
		if got != uint32(idx[i]) {
			t.Fatalf("event %d for sw_if_index %d, want %d (order lost)", i, got, idx[i])
		}
	}
	if n := sim.ClientCount(); n != 2 {
		t.Errorf("clients = %d, want 2 (subscriber dropped)", n)
	}
}
