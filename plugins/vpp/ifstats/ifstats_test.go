package ifstats

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	govppapi "go.fd.io/govpp/api"
)

type names map[uint32]string

func (n names) NameOf(i uint32) (string, bool) { s, ok := n[i]; return s, ok }

func TestStoreNamesAgentInterfacesOnly(t *testing.T) {
	var got map[string]Counters
	c := New(Options{Names: names{1: "xc-a", 2: "xc-b"}, OnUpdate: func(m map[string]Counters) { got = m }})
	c.store([]govppapi.InterfaceCounters{
		{InterfaceIndex: 0, InterfaceName: "local0", Rx: govppapi.InterfaceCounterCombined{Packets: 9}},
		{InterfaceIndex: 1, Rx: govppapi.InterfaceCounterCombined{Packets: 10, Bytes: 640}, Tx: govppapi.InterfaceCounterCombined{Packets: 7, Bytes: 448}, Drops: 1},
		{InterfaceIndex: 2, Rx: govppapi.InterfaceCounterCombined{Packets: 7, Bytes: 448}, Tx: govppapi.InterfaceCounterCombined{Packets: 9, Bytes: 576}, RxMiss: 3},
	})
	snap := c.Snapshot()
	if len(snap) != 2 || len(got) != 2 {
		t.Fatalf("snapshot %v (callback %v): want only the agent's two interfaces", snap, got)
	}
	if snap["xc-a"].RxPackets != 10 || snap["xc-b"].RxMiss != 3 {
		t.Fatalf("snapshot %+v", snap)
	}
	xc, ok := CrossConnect(snap, "xc-a", "xc-b")
	if !ok {
		t.Fatal("cross-connect counters missing")
	}
	want := CrossConnectCounters{
		AtoB:  Direction{RxPackets: 10, RxBytes: 640, TxPackets: 9, TxBytes: 576},
		BtoA:  Direction{RxPackets: 7, RxBytes: 448, TxPackets: 7, TxBytes: 448},
		Drops: 1,
	}
	if xc != want {
		t.Fatalf("cross-connect %+v, want %+v", xc, want)
	}
	if _, ok := CrossConnect(snap, "xc-a", "nope"); ok {
		t.Fatal("cross-connect with an unknown end reported counters")
	}
	// The snapshot is a copy: callers cannot corrupt the collector.
	snap["xc-a"] = Counters{}
	if c.Snapshot()["xc-a"].RxPackets != 10 {
		t.Fatal("Snapshot returned the collector's own map")
	}
}

func TestRunWithoutVPPKeepsTrying(t *testing.T) {
	c := New(Options{Socket: filepath.Join(t.TempDir(), "stats.sock"), Names: names{}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	<-done // returns when ctx ends, not before, and never reports connected
	if c.Connected() {
		t.Fatal("connected to a socket that does not exist")
	}
	if ctx.Err() == nil {
		t.Fatal("Run gave up before its context ended")
	}
}
