package ifstats

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
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

// A read of shared memory that is no longer mapped (what a dying or
// starting VPP can leave behind) is an error, not a crash of the agent.
func TestGuardFaultTurnsMemoryFaultIntoError(t *testing.T) {
	mem, err := syscall.Mmap(-1, 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	var sink byte
	err = guardFault(func() error {
		sink = mem[0] // faults: the page is gone
		return nil
	})
	var fe *FaultError
	if !errors.As(err, &fe) {
		t.Fatalf("guardFault = %v (read %d), want a FaultError", err, sink)
	}
	// The goroutine's own setting is restored: a later fault outside the
	// guard would crash as before (not checked: that would kill the test).
	if old := debug.SetPanicOnFault(false); old {
		t.Fatal("panic-on-fault left enabled after the guard")
	}
	// Errors pass through; panics that are not faults are bugs and go on.
	want := errors.New("busy")
	if err := guardFault(func() error { return want }); err != want {
		t.Fatalf("guardFault passed %v, want %v", err, want)
	}
	defer func() {
		if r := recover(); r != "bug" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	_ = guardFault(func() error { panic("bug") })
}
