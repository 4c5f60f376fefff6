package vhostuser

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inside reports whether b lies inside one of mt's mappings.
func inside(mt *memTable, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	for _, r := range mt.regions {
		lo := uintptr(unsafe.Pointer(&r.mapping[0]))
		if p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(r.mapping)) {
			return true
		}
	}
	return false
}

// TestFailedSetMemTableLeavesNoStaleRings is the crash of issue 14: a
// SET_MEM_TABLE whose new table maps but does not cover ring 0 used to
// return after ring 0 failed, with ring 1 still viewing the old, now
// unmapped, table; the next burst faulted in load16. After the fix no ring
// views anything outside the table in effect, and bursts are harmless.
func TestFailedSetMemTableLeavesNoStaleRings(t *testing.T) {
	tp := openPort(t, Config{})
	f := newFrontend(t)
	f.dial(tp.cfg.SocketPath)
	f.handshake(feOpts{})
	tp.waitLink(t, true)

	// A second memfd whose region covers ring 1 (at +64 KiB) but not ring 0.
	fd, err := unix.MemfdCreate("vhost-hostile", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, feMmapOff+feRegion); err != nil {
		t.Fatal(err)
	}
	pl := state(1, 0)
	for _, v := range []uint64{feGPA + 64<<10, feRegion - 64<<10, feUA + 64<<10, feMmapOff + 64<<10} {
		pl = binary.LittleEndian.AppendUint64(pl, v)
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	// Apply it as the protocol goroutine would, under the port lock, and
	// look at the rings before anything resets them.
	tp.mu.Lock()
	err = tp.setMemTable(pl, []int{dup})
	if err == nil {
		tp.mu.Unlock()
		t.Fatal("SET_MEM_TABLE not covering ring 0 was accepted")
	}
	for i := range tp.rings {
		v := &tp.rings[i]
		for _, b := range [][]byte{v.desc, v.avail, v.used} {
			if !inside(tp.mem, b) {
				tp.mu.Unlock()
				t.Fatalf("ring %d views memory outside the table in effect (unmapped): %v", i, err)
			}
		}
		if v.ready && v.desc == nil {
			tp.mu.Unlock()
			t.Fatalf("ring %d is ready without views", i)
		}
	}
	tp.mu.Unlock()
	// The data path must survive whatever state is left.
	tp.TxBurst([][]byte{make([]byte, 64)})
	tp.RxBurst(make([][]byte, 4))
}

// TestShrunkGuestMemoryDropsOnlyThatFrontend: a hostile frontend truncates
// its memory file after SET_MEM_TABLE; the next burst faults (SIGBUS). It
// must cost that frontend its connection, not the process.
func TestShrunkGuestMemoryDropsOnlyThatFrontend(t *testing.T) {
	tp := openPort(t, Config{})
	f := newFrontend(t)
	f.dial(tp.cfg.SocketPath)
	f.handshake(feOpts{})
	tp.waitLink(t, true)
	f.postRx(4, 1, 2048)
	if err := unix.Ftruncate(f.memfd, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- tp.TxBurst([][]byte{make([]byte, 64)}) }()
	select {
	case n := <-done:
		if n != 0 {
			t.Fatalf("TxBurst into truncated guest memory sent %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TxBurst hung")
	}
	tp.waitLink(t, false)
	if tp.Stats().ProtocolErrors == 0 {
		t.Fatal("the fault was not counted as a protocol error")
	}
}

// TestShrunkGuestMemoryOnControlPath: the protocol goroutine touches guest
// memory too (a ring that starts reads its used index). A frontend that
// truncates its memory and then enables a ring must be dropped, not crash
// the process, and the port must serve the next frontend.
func TestShrunkGuestMemoryOnControlPath(t *testing.T) {
	tp := openPort(t, Config{})
	f := newFrontend(t)
	f.dial(tp.cfg.SocketPath)
	f.handshake(feOpts{noEnable: true})
	if err := unix.Ftruncate(f.memfd, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.rawSend(reqSetVringEnable, flagVersion, state(0, 1)); err != nil {
		t.Fatal(err)
	}
	f.waitClosed()
	if tp.Stats().ProtocolErrors == 0 {
		t.Fatal("the fault was not counted as a protocol error")
	}
	// The next frontend is served normally.
	g := newFrontend(t)
	g.dial(tp.cfg.SocketPath)
	g.handshake(feOpts{})
	tp.waitLink(t, true)
}
