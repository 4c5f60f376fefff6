package vhostuser

import (
	"encoding/binary"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Ring layout of FuzzRings, in the 64 KiB region (guest physical 0, user
// address fuzzUA): ring q at q*0x1000, 16 entries, buffers from 0x4000.
const (
	fuzzUA       = 0x100000
	fuzzRingSize = 16
	fuzzRingArea = 0x4000 // cleared before each input
)

// FuzzRings lets the input be the guest's descriptor tables and avail rings
// of both queues (see writeFuzzRings) behind a correctly
// negotiated connection, then runs both bursts: bogus addresses, lengths,
// loops and indexes must never panic or touch memory outside the region.
func FuzzRings(f *testing.F) {
	memfd, err := unix.MemfdCreate("vhost-fuzz-rings", unix.MFD_CLOEXEC)
	if err != nil {
		f.Fatal(err)
	}
	if err := unix.Ftruncate(memfd, 64<<10); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { unix.Close(memfd) })
	for _, s := range fuzzRingSeeds() {
		f.Add(s)
	}
	var mu sync.Mutex
	zero := make([]byte, fuzzRingArea)
	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		// The bursts recover panics (dropping the frontend); here a panic
		// is a bug to report, not hide.
		var caught any
		onBurstPanic = func(r any) { caught = r }
		defer func() {
			onBurstPanic = nil
			if caught != nil {
				t.Fatalf("burst panicked on fuzzed rings: %v", caught)
			}
		}()
		if _, err := unix.Pwrite(memfd, zero, 0); err != nil {
			t.Fatal(err)
		}
		p := fuzzRingPort(t, memfd)
		defer func() {
			p.mu.Lock()
			p.resetLocked()
			p.mu.Unlock()
		}()
		writeFuzzRings(t, memfd, data)
		frames := [][]byte{make([]byte, 60), make([]byte, 1500), make([]byte, 9000)}
		bufs := makeBufs(8, 2048)
		for range 2 {
			p.TxBurst(frames)
			for i := range bufs {
				bufs[i] = bufs[i][:0]
			}
			n := p.RxBurst(bufs)
			for _, b := range bufs[:n] {
				if len(b) > 2048 {
					t.Fatalf("frame of %d bytes in a 2048-byte buffer", len(b))
				}
			}
		}
	})
}

// fuzzRingPort negotiates a running queue pair over memfd without a socket.
func fuzzRingPort(t *testing.T, memfd int) *Port {
	t.Helper()
	p := &Port{cfg: Config{MaxQueuePairs: 1}, log: quietLogger(), rxReady: make(chan struct{}, 1), one: [8]byte{1}}
	p.resetLocked()
	region := state(1, 0)
	for _, v := range []uint64{0, 64 << 10, fuzzUA, 0} {
		region = binary.LittleEndian.AppendUint64(region, v)
	}
	fd, err := unix.Dup(memfd)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		req uint32
		pl  []byte
		fds []int
	}{
		{reqSetFeatures, le64(1<<featVersion1 | 1<<featMrgRxbuf), nil},
		{reqSetMemTable, region, []int{fd}},
	}
	for q := uint32(0); q < 2; q++ {
		base := uint64(fuzzUA + q*0x1000)
		addr := state(q, 0)
		for _, v := range []uint64{base, base + 0x800, base + 0x400, 0} {
			addr = binary.LittleEndian.AppendUint64(addr, v)
		}
		steps = append(steps,
			struct {
				req uint32
				pl  []byte
				fds []int
			}{reqSetVringNum, state(q, fuzzRingSize), nil},
			struct {
				req uint32
				pl  []byte
				fds []int
			}{reqSetVringAddr, addr, nil},
			struct {
				req uint32
				pl  []byte
				fds []int
			}{reqSetVringKick, le64(uint64(q) | vringNoFD), nil})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range steps {
		if _, err := p.apply(header{Request: s.req, Flags: flagVersion}, s.pl, s.fds); err != nil {
			t.Fatalf("%s: %v", requestName(s.req), err)
		}
		closeFDs(s.fds)
	}
	if err := p.refreshLocked(); err != nil || !p.rings[0].ready || !p.rings[1].ready {
		t.Fatalf("rings not running: %v", err)
	}
	return p
}

// The input packs, per ring, the descriptor table then the avail ring; the
// rest of guest memory stays zero. Small inputs keep the fuzzer fast.
const (
	fuzzDescBytes  = fuzzRingSize * descSize
	fuzzAvailBytes = 4 + 2*fuzzRingSize + 2
	fuzzPerRing    = fuzzDescBytes + fuzzAvailBytes
)

func writeFuzzRings(t testing.TB, memfd int, data []byte) {
	for q := range 2 {
		part := data[min(len(data), q*fuzzPerRing):min(len(data), (q+1)*fuzzPerRing)]
		desc, avail := part[:min(len(part), fuzzDescBytes)], part[min(len(part), fuzzDescBytes):]
		if _, err := unix.Pwrite(memfd, desc, int64(q*0x1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Pwrite(memfd, avail, int64(q*0x1000+0x400)); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzRingSeeds builds well-formed guest rings: two RX buffers, and a TX
// frame as a header descriptor chained to a data descriptor.
func fuzzRingSeeds() map[string][]byte {
	mk := func(loop bool) []byte {
		m := make([]byte, 2*fuzzPerRing)
		le := binary.LittleEndian
		desc := func(ring, i int, addr uint64, n uint32, flags, next uint16) {
			d := m[ring*fuzzPerRing+i*descSize:]
			le.PutUint64(d, addr)
			le.PutUint32(d[8:], n)
			le.PutUint16(d[12:], flags)
			le.PutUint16(d[14:], next)
		}
		avail := func(ring int) []byte { return m[ring*fuzzPerRing+fuzzDescBytes:] }
		// RX (ring 0): two 2048-byte write buffers at 0x4000 and 0x4800.
		desc(0, 0, 0x4000, 2048, descFWrite, 0)
		desc(0, 1, 0x4800, 2048, descFWrite, 0)
		le.PutUint16(avail(0)[2:], 2)
		le.PutUint16(avail(0)[4:], 0)
		le.PutUint16(avail(0)[6:], 1)
		// TX (ring 1): header then 60 bytes of frame.
		next := uint16(1)
		if loop {
			next = 0
		}
		desc(1, 0, 0x6000, 12, descFNext, next)
		desc(1, 1, 0x6100, 60, 0, 0)
		le.PutUint16(avail(1)[2:], 1)
		return m
	}
	return map[string][]byte{"valid": mk(false), "tx_loop": mk(true)}
}
