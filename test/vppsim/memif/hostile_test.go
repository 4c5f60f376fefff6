package memif

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnsealedRegionRefused: a slave whose region memfd is not sealed
// against shrinking could truncate it after the master mapped it and crash
// the master with SIGBUS. The master refuses the region and drops only that
// peer.
func TestUnsealedRegionRefused(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1})
	p.waitUp(t)
	victim, err := NewMaster(p.sock, Config{ID: 2, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	victim.Connect()

	fd, err := unix.MemfdCreate("hostile region", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 1<<20); err != nil {
		t.Fatal(err)
	}
	uc := rawSlave(t, p.sock.Path())
	var b [msgSize]byte
	m := message{typ: msgInit, init: initMsg{version: Version, id: 2, mode: ModeEthernet}}
	m.encode(&b)
	if _, err := uc.Write(b[:]); err != nil {
		t.Fatal(err)
	}
	m = message{typ: msgAddRegion, addRegion: addRegionMsg{index: 0, size: 1 << 20}}
	m.encode(&b)
	if _, _, err := uc.WriteMsgUnix(b[:], unix.UnixRights(fd), nil); err != nil {
		t.Fatal(err)
	}
	if reason := expectDisconnect(t, uc); !strings.Contains(reason, "F_SEAL_SHRINK") {
		t.Fatalf("DISCONNECT reason %q, want the missing seal", reason)
	}
	// The neighbour on the same socket kept working.
	transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], [][]byte{frame(1, 64)})
}

// TestMemoryFaultDropsOnlyThatPeer: the peer's memory file shrinks under a
// mapped ring (the attack sealing prevents; here the queue is built on an
// unsealed file directly). The burst touching it must return an error and
// fail the peer instead of killing the process with SIGBUS.
func TestMemoryFaultDropsOnlyThatPeer(t *testing.T) {
	const size = 1 << 16
	fd, err := unix.MemfdCreate("shrinking", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, size); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	r, err := newRing(mem, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	r.init(0)
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	q, err := newQueue(masterRx, 0, r, [][]byte{mem}, evfd, func(reason string) { failed = append(failed, reason) })
	if err != nil {
		t.Fatal(err)
	}
	// The hostile peer truncates its file: every page of the mapping is gone.
	if err := unix.Ftruncate(fd, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var n int
	go func() { // a data-path goroutine of its own, as vppsim runs them
		defer close(done)
		n, err = q.RxBurst(makeBufs(4, 2048))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RxBurst hung")
	}
	if n != 0 || !errors.Is(err, ErrBadDescriptor) || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("RxBurst over truncated memory = %d, %v; want a memory-fault error", n, err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "memory fault") {
		t.Fatalf("peer failed with %q, want one memory-fault reason", failed)
	}
}
