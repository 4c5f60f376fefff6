package vppsim

import (
	"context"
	"testing"

	"go.fd.io/govpp/binapi/memclnt"
)

// BenchmarkControlPingRoundTrip measures one request/reply through govpp and the socket.
func BenchmarkControlPingRoundTrip(b *testing.B) {
	sim := startSim(b)
	conn := connect(b, sim)
	mc := memclnt.NewServiceClient(conn)
	for b.Loop() {
		if _, err := mc.ControlPing(context.Background(), &memclnt.ControlPing{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInterfaceDump300 measures a 300-interface sw_interface_dump.
func BenchmarkInterfaceDump300(b *testing.B) {
	sim := startSim(b)
	conn := connect(b, sim)
	sim.stMu.Lock()
	for i := 0; i < 300; i++ {
		sim.st.createLoopback(sim.st.freeInstance(kindLoopback), [6]byte{})
	}
	sim.stMu.Unlock()
	for b.Loop() {
		if n := len(dumpIfacesB(b, conn)); n != 301 {
			b.Fatalf("dump = %d", n)
		}
	}
}
