package vppsim

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

// memPort is an in-memory driver recording what vppsim transmits.
type memPort struct{ frames [][]byte }

func (m *memPort) Transmit(f []byte) error {
	m.frames = append(m.frames, append([]byte(nil), f...))
	return nil
}
func (m *memPort) Close() error { return nil }

func frame(dst, src byte) []byte {
	f := make([]byte, 60)
	f[0], f[6] = dst, src
	f[5], f[11] = 1, 1
	return f
}

func newTestState(t *testing.T, n int) (*state, []*iface, []*memPort) {
	t.Helper()
	st := newState(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var ifs []*iface
	var drv []*memPort
	for i := 0; i < n; i++ {
		ifc := st.createLoopback(st.freeInstance(kindLoopback), [6]byte{})
		st.setAdmin(ifc, true)
		d := &memPort{}
		ifc.port.setDriver(d)
		ifs, drv = append(ifs, ifc), append(drv, d)
	}
	return st, ifs, drv
}

func TestXconnectForwardsOneWay(t *testing.T) {
	st, ifs, drv := newTestState(t, 2)
	st.setXconnect(ifs[0], ifs[1])
	f := frame(0x02, 0x04)
	ifs[0].port.Receive(f)
	ifs[1].port.Receive(f) // no xconnect back: dropped
	if len(drv[1].frames) != 1 || !bytes.Equal(drv[1].frames[0], f) || len(drv[0].frames) != 0 {
		t.Fatalf("tx: if1=%d if0=%d", len(drv[1].frames), len(drv[0].frames))
	}
	c0, c1 := ifs[0].port.Counters(), ifs[1].port.Counters()
	if c0.RxPackets != 1 || c0.RxBytes != 60 || c1.TxPackets != 1 || c1.TxBytes != 60 || c1.Drops != 1 {
		t.Errorf("counters %+v %+v", c0, c1)
	}
	// Admin down on the output drops; VPP counts the drop on the receiving interface.
	st.setAdmin(ifs[1], false)
	ifs[0].port.Receive(f)
	if c := ifs[1].port.Counters(); c.Drops != 1 || c.TxPackets != 1 {
		t.Errorf("admin down tx: %+v", c)
	}
	if d := ifs[0].port.Drops()[DropAdminDown]; d != 1 {
		t.Errorf("admin-down drops on the receiving interface: %v", ifs[0].port.Drops())
	}
}

func TestBridgeFloodLearnForward(t *testing.T) {
	st, ifs, drv := newTestState(t, 3)
	bd := newBDState(1, true, true, true, true, false, false, 0, "")
	st.bds[1] = bd
	for _, ifc := range ifs {
		st.joinBridge(ifc, bd, 0, 0)
	}
	// Unknown destination floods to everyone but the sender, and 0x02 is learned on if0.
	ifs[0].port.Receive(frame(0x06, 0x02))
	if len(drv[0].frames) != 0 || len(drv[1].frames) != 1 || len(drv[2].frames) != 1 {
		t.Fatalf("flood: %d %d %d", len(drv[0].frames), len(drv[1].frames), len(drv[2].frames))
	}
	// A reply to 0x02 goes only to if0.
	ifs[2].port.Receive(frame(0x02, 0x06))
	if len(drv[0].frames) != 1 || len(drv[1].frames) != 1 {
		t.Fatalf("forward: %d %d", len(drv[0].frames), len(drv[1].frames))
	}
	// Broadcast floods.
	ifs[1].port.Receive(frame(0xff, 0x08))
	if len(drv[0].frames) != 2 || len(drv[2].frames) != 2 {
		t.Fatalf("broadcast: %d %d", len(drv[0].frames), len(drv[2].frames))
	}
	// Leaving the bridge forgets what was learned there and stops forwarding to it.
	st.clearL2(ifs[0])
	ifs[2].port.Receive(frame(0x02, 0x06))
	if len(drv[0].frames) != 2 || len(drv[1].frames) != 2 {
		t.Fatalf("after leave: %d %d", len(drv[0].frames), len(drv[1].frames))
	}
}

func TestBridgeSplitHorizon(t *testing.T) {
	st, ifs, drv := newTestState(t, 3)
	bd := newBDState(1, true, true, true, true, false, false, 0, "")
	st.bds[1] = bd
	st.joinBridge(ifs[0], bd, 1, 0)
	st.joinBridge(ifs[1], bd, 1, 0)
	st.joinBridge(ifs[2], bd, 0, 0)
	ifs[0].port.Receive(frame(0xff, 0x02))
	if len(drv[1].frames) != 0 || len(drv[2].frames) != 1 {
		t.Fatalf("split horizon: %d %d", len(drv[1].frames), len(drv[2].frames))
	}
}

func TestReceiveAllocatesNothing(t *testing.T) {
	st, ifs, _ := newTestState(t, 2)
	d := discard{}
	ifs[1].port.setDriver(d)
	st.setXconnect(ifs[0], ifs[1])
	f := frame(0x02, 0x04)
	if n := testing.AllocsPerRun(1000, func() { ifs[0].port.Receive(f) }); n != 0 {
		t.Errorf("xconnect receive allocates %.1f per frame", n)
	}
	bd := newBDState(1, true, true, true, true, false, false, 0, "")
	st.bds[1] = bd
	st.joinBridge(ifs[0], bd, 0, 0)
	st.joinBridge(ifs[1], bd, 0, 0)
	ifs[0].port.Receive(f) // learn once
	if n := testing.AllocsPerRun(1000, func() { ifs[0].port.Receive(f) }); n != 0 {
		t.Errorf("bridge receive allocates %.1f per frame", n)
	}
}

type discard struct{}

func (discard) Transmit([]byte) error { return nil }
func (discard) Close() error          { return nil }

func BenchmarkXconnectReceive(b *testing.B) {
	st, ifs, _ := newTestState(&testing.T{}, 2)
	ifs[1].port.setDriver(discard{})
	st.setXconnect(ifs[0], ifs[1])
	f := frame(0x02, 0x04)
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		ifs[0].port.Receive(f)
	}
}

func BenchmarkBridgeReceive(b *testing.B) {
	st, ifs, _ := newTestState(&testing.T{}, 2)
	ifs[1].port.setDriver(discard{})
	bd := newBDState(1, true, true, true, true, false, false, 0, "")
	st.bds[1] = bd
	st.joinBridge(ifs[0], bd, 0, 0)
	st.joinBridge(ifs[1], bd, 0, 0)
	ifs[1].port.Receive(frame(0x04, 0x02))
	f := frame(0x02, 0x04)
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		ifs[0].port.Receive(f)
	}
}

func TestBridgeStaticEntryBeatsLearning(t *testing.T) {
	st, ifs, drv := newTestState(t, 3)
	bd := newBDState(1, true, true, true, true, false, false, 0, "")
	st.bds[1] = bd
	for _, ifc := range ifs {
		st.joinBridge(ifc, bd, 0, 0)
	}
	bd.fwd.fib[[6]byte{0x0a, 0, 0, 0, 0, 1}] = fibEntry{port: ifs[2].port, static: true}
	// A frame claiming the static MAC as source from if0 does not move it.
	ifs[0].port.Receive(frame(0xff, 0x0a))
	ifs[1].port.Receive(frame(0x0a, 0x0c))
	if len(drv[2].frames) != 2 || len(drv[0].frames) != 0 { // broadcast + unicast to if2, nothing to if0
		t.Fatalf("static entry moved: if0=%d if2=%d", len(drv[0].frames), len(drv[2].frames))
	}
	// Leaving the bridge keeps the static entry (VPP flushes learned entries only).
	st.clearL2(ifs[2])
	if bd.fwd.fib[[6]byte{0x0a, 0, 0, 0, 0, 1}].port != ifs[2].port {
		t.Error("static entry flushed on leave")
	}
}
