package statseg

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"testing"
)

func ifaceSet(n int, k uint64) []InterfaceCounters {
	out := make([]InterfaceCounters, n)
	for i := range out {
		out[i] = sample(uint32(i), fmt.Sprintf("memif%d/0", i), k)
	}
	return out
}

func assertSame(t *testing.T, seg string, conn readFn, want []InterfaceCounters, n int) {
	t.Helper()
	got := conn()
	if len(got) != n {
		t.Fatalf("%s: got %d interfaces, want %d", seg, len(got), n)
	}
	for _, w := range want {
		if !reflect.DeepEqual(got[w.SwIfIndex], toAPI(w)) {
			t.Fatalf("%s: sw_if_index %d:\n got %+v\nwant %+v", seg, w.SwIfIndex, got[w.SwIfIndex], toAPI(w))
		}
	}
}

func TestInterfacesAddedLaterAppear(t *testing.T) {
	seg, path := newTestSegment(t)
	if err := seg.Update(ifaceSet(2, 1)); err != nil {
		t.Fatal(err)
	}
	conn := connectStats(t, path)
	read := reader(t, conn)
	assertSame(t, "initial", read, ifaceSet(2, 1), 2)

	// Same layout, new values: readers keep their directory (same epoch).
	if err := seg.Update(ifaceSet(2, 2)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "values only", read, ifaceSet(2, 2), 2)

	// Past the initial vector capacity of 8: every vector is reallocated.
	for _, n := range []int{3, 9, 40} {
		if err := seg.Update(ifaceSet(n, uint64(n))); err != nil {
			t.Fatalf("Update(%d): %v", n, err)
		}
		assertSame(t, fmt.Sprintf("%d interfaces", n), read, ifaceSet(n, uint64(n)), n)
	}
}

func TestLateClientSeesCurrentValues(t *testing.T) {
	seg, path := newTestSegment(t)
	for k := uint64(1); k <= 5; k++ {
		if err := seg.Update(ifaceSet(int(k)*3, k)); err != nil {
			t.Fatal(err)
		}
	}
	assertSame(t, "late client", reader(t, connectStats(t, path)), ifaceSet(15, 5), 15)
}

func TestRenameAndDelete(t *testing.T) {
	seg, path := newTestSegment(t)
	if err := seg.Update(ifaceSet(3, 1)); err != nil {
		t.Fatal(err)
	}
	read := reader(t, connectStats(t, path))
	next := []InterfaceCounters{sample(0, "local0", 2), sample(2, "a-much-longer-interface-name/7", 2)}
	if err := seg.Update(next); err != nil {
		t.Fatal(err)
	}
	got := read()
	if len(got) != 3 {
		t.Fatalf("got %d interfaces, want 3 (vectors never shrink)", len(got))
	}
	if !reflect.DeepEqual(got[0], toAPI(next[0])) || !reflect.DeepEqual(got[2], toAPI(next[1])) {
		t.Fatalf("renamed interfaces: got %+v / %+v", got[0], got[2])
	}
	// A deleted sw_if_index has no name and zero counters, like VPP's freed slot.
	if want := toAPI(InterfaceCounters{SwIfIndex: 1}); !reflect.DeepEqual(got[1], want) {
		t.Fatalf("deleted sw_if_index 1: got %+v", got[1])
	}
	// Re-adding it brings the name back.
	if err := seg.Update(append(next, sample(1, "memif9/9", 3))); err != nil {
		t.Fatal(err)
	}
	if got := read(); got[1].InterfaceName != "memif9/9" || got[1].Drops != sample(1, "", 3).Drops {
		t.Fatalf("re-added sw_if_index 1: got %+v", got[1])
	}
}

func TestUpdateRejectsBadInput(t *testing.T) {
	seg, path := newTestSegment(t)
	good := ifaceSet(2, 1)
	if err := seg.Update(good); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]InterfaceCounters{
		"duplicate index": {sample(0, "a", 1), sample(0, "b", 1)},
		"empty name":      {sample(0, "", 1)},
		"NUL in name":     {sample(0, "me\x00mif", 1)},
		"index too big":   {sample(MaxInterfaces, "x", 1)},
		"name too long":   {sample(0, string(make([]byte, MaxNameLen+1)), 1)},
	}
	for name, in := range bad {
		if err := seg.Update(in); err == nil {
			t.Errorf("%s: Update accepted %+v", name, in)
		}
	}
	assertSame(t, "after rejected updates", reader(t, connectStats(t, path)), good, 2)
}

func TestSegmentFullLeavesPreviousState(t *testing.T) {
	seg, path := newTestSegment(t, WithSize(64<<10))
	good := ifaceSet(4, 1)
	if err := seg.Update(good); err != nil {
		t.Fatal(err)
	}
	err := seg.Update(ifaceSet(5000, 2))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Update of 5000 interfaces into 64 KiB: err %v, want ErrNoSpace", err)
	}
	assertSame(t, "after failed growth", reader(t, connectStats(t, path)), good, 4)
	// The space the failed update allocated is usable again at once.
	if err := seg.Update(ifaceSet(30, 3)); err != nil {
		t.Fatalf("Update after failure: %v", err)
	}
}

func TestMisbehavingClientsDoNotBreakServer(t *testing.T) {
	seg, path := newTestSegment(t)
	if err := seg.Update(ifaceSet(2, 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c, err := net.Dial("unixpacket", path)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 1 {
			// Talk to a server that expects nothing.
			_, _ = c.Write([]byte("GARBAGE"))
		}
		c.Close()
	}
	// A stream client can't even connect to a seqpacket socket.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		t.Errorf("stream dial to seqpacket socket succeeded")
	}
	assertSame(t, "after bad clients", reader(t, connectStats(t, path)), ifaceSet(2, 1), 2)
}

func TestClose(t *testing.T) {
	seg, path := newTestSegment(t)
	if err := seg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := seg.Update(ifaceSet(1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Close: %v", err)
	}
	// A second segment on the same path serves again.
	seg2, err := New(path, WithLogger(quietLogger()), WithSize(1<<20))
	if err != nil {
		t.Fatalf("New on reused path: %v", err)
	}
	t.Cleanup(func() { seg2.Close() })
	if err := seg2.Update(ifaceSet(1, 1)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "second segment", reader(t, connectStats(t, path)), ifaceSet(1, 1), 1)
}
