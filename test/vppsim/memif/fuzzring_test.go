package memif

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzRxRing lets the input be a peer's ring (header, head, tail and
// descriptors) and the data around it, then receives from it as master
// and as slave: bogus regions, offsets, lengths, chains and indexes must
// never panic or copy memory from outside the shared region.
func FuzzRxRing(f *testing.F) {
	const (
		regionSize = 1 << 16
		log2       = 4
		bufOff     = 0x1000
	)
	f.Add([]byte{}, uint16(1), uint16(0))
	f.Add(make([]byte, 600), uint16(16), uint16(0))
	f.Add(make([]byte, 600), uint16(0xffff), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, head, tail uint16) {
		mem := make([]byte, regionSize)
		for _, kind := range []queueKind{masterRx, slaveRx} {
			clear(mem)
			r, err := newRing(mem, 0, log2)
			if err != nil {
				t.Fatal(err)
			}
			r.init(0)
			// Everything after the ring header is the peer's to write.
			copy(mem[ringHdrSize:], data)
			r.setHead(head)
			r.setTail(tail)
			evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			var failed string
			q, err := newQueue(kind, 0, r, [][]byte{mem}, evfd, func(reason string) { failed = reason })
			if err != nil {
				unix.Close(evfd)
				t.Fatal(err)
			}
			q.bufBase, q.bufSize = bufOff, 2048
			if kind == slaveRx {
				q.head = head // what we offered, as refill would have
			}
			var caught any
			onBurstPanic = func(r any) { caught = r }
			bufs := makeBufs(8, 2048)
			for range 2 {
				n, err := q.RxBurst(bufs)
				if err != nil && failed == "" {
					// a data-path error always fails the peer
					if err != ErrDisconnected {
						t.Fatalf("RxBurst error %v without failing the peer", err)
					}
				}
				for _, b := range bufs[:n] {
					if len(b) > 2048 {
						t.Fatalf("frame of %d bytes in a 2048-byte buffer", len(b))
					}
				}
			}
			onBurstPanic = nil
			if caught != nil {
				t.Fatalf("RxBurst panicked on a fuzzed ring: %v", caught)
			}
			q.close()
		}
	})
}
