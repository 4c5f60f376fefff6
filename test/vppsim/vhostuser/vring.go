package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Split virtqueue layout (virtio 1.x, 2.7).
const (
	descSize      = 16
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4

	availFNoInterrupt = 1
	usedFNoNotify     = 1
)

var errBadChain = errors.New("bad descriptor chain")

// vring is the backend's view of one split virtqueue. The protocol goroutine
// configures it under Port.mu (write lock); the data path uses it under the
// read lock, one burst caller per direction.
type vring struct {
	num       uint16
	addr      vringAddr
	addrSet   bool
	lastAvail uint16
	usedIdx   uint16
	usedFlags uint16

	desc, avail, used []byte

	kick  *os.File // eventfd the frontend kicks; nil for none
	call  int      // eventfd we signal; -1 for none
	err   int      // error eventfd, kept only to be closed
	kickN bool     // SET_VRING_KICK arrived (with or without fd): ring started

	enabled bool
	ready   bool // started, enabled and translated: the data path may touch it
}

func newVring() vring { return vring{call: -1, err: -1} }

// closeFDs releases the ring's eventfds.
func (v *vring) closeFDs() {
	if v.kick != nil {
		v.kick.Close()
		v.kick = nil
	}
	if v.call >= 0 {
		unix.Close(v.call)
		v.call = -1
	}
	if v.err >= 0 {
		unix.Close(v.err)
		v.err = -1
	}
}

// translate maps the ring's three areas through the memory table. The
// alignment checks are the spec's, and the used-ring one lets us publish
// flags and idx with one atomic 32-bit store.
func (v *vring) translate(mt *memTable) error {
	if mt == nil || !v.addrSet || v.num == 0 {
		return nil
	}
	a := v.addr
	if a.Desc%16 != 0 || a.Avail%2 != 0 || a.Used%4 != 0 {
		return fmt.Errorf("%w: vring %d: misaligned desc %#x avail %#x used %#x", errBadAddress, a.Index, a.Desc, a.Avail, a.Used)
	}
	n := uint64(v.num)
	var ok1, ok2, ok3 bool
	v.desc, ok1 = mt.user(a.Desc, n*descSize)
	v.avail, ok2 = mt.user(a.Avail, 6+2*n)
	v.used, ok3 = mt.user(a.Used, 6+8*n)
	if !ok1 || !ok2 || !ok3 {
		v.desc, v.avail, v.used = nil, nil, nil
		return fmt.Errorf("%w: vring %d: desc %#x avail %#x used %#x (size %d)", errBadAddress, a.Index, a.Desc, a.Avail, a.Used, n)
	}
	// The frontend picks region offsets too: aligned guest addresses can
	// still land misaligned here, and the atomics need the host alignment.
	if uintptr(unsafe.Pointer(&v.used[0]))%4 != 0 || uintptr(unsafe.Pointer(&v.avail[0]))%2 != 0 {
		v.desc, v.avail, v.used = nil, nil, nil
		return fmt.Errorf("%w: vring %d: rings misaligned in the mapping (region offsets)", errBadAddress, a.Index)
	}
	return nil
}

// load16 reads a little-endian u16 that the frontend writes concurrently.
// Go has no 16-bit atomics, so load the aligned word that contains it; that
// word lies in the same page, which is mapped.
func load16(b []byte, off int) uint16 {
	p := unsafe.Pointer(&b[off])
	if uintptr(p)&3 == 0 {
		return uint16(atomic.LoadUint32((*uint32)(p)))
	}
	return uint16(atomic.LoadUint32((*uint32)(unsafe.Add(p, -2))) >> 16)
}

func (v *vring) availIdx() uint16 { return load16(v.avail, 2) }

// pending reads the avail index and checks that the guest has not claimed
// more entries than the ring holds, which would make us reuse used slots.
func (v *vring) pending() (uint16, error) {
	a := v.availIdx()
	if n := a - v.lastAvail; n > v.num {
		return a, fmt.Errorf("%w: vring %d: avail index %d is %d entries ahead of %d, ring size %d",
			errBadChain, v.addr.Index, a, n, v.lastAvail, v.num)
	}
	return a, nil
}
func (v *vring) availFlags() uint16 { return load16(v.avail, 0) }

func (v *vring) availHead(i uint16) uint16 {
	return binary.LittleEndian.Uint16(v.avail[4+2*int(i%v.num):])
}

// putUsed fills a used element without publishing it.
func (v *vring) putUsed(slot uint16, id uint16, n uint32) {
	e := v.used[4+8*int(slot%v.num):]
	binary.LittleEndian.PutUint32(e, uint32(id))
	binary.LittleEndian.PutUint32(e[4:], n)
}

// publishUsed makes used elements visible; the atomic store orders the
// element writes before the index, as the spec's write barrier requires.
func (v *vring) publishUsed() {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&v.used[0])), uint32(v.usedFlags)|uint32(v.usedIdx)<<16)
}

func (v *vring) setNoNotify(on bool) {
	f := v.usedFlags &^ usedFNoNotify
	if on {
		f |= usedFNoNotify
	}
	if f != v.usedFlags {
		v.usedFlags = f
		v.publishUsed()
	}
}

type descEntry struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func (v *vring) descAt(i uint16) descEntry {
	d := v.desc[int(i)*descSize:]
	le := binary.LittleEndian
	return descEntry{addr: le.Uint64(d), len: le.Uint32(d[8:]), flags: le.Uint16(d[12:]), next: le.Uint16(d[14:])}
}

// readChain gathers a guest TX chain into dst, skipping the virtio-net header.
// It returns the frame length and whether dst was too short.
func (v *vring) readChain(mt *memTable, head uint16, hdrLen int, dst []byte) (n int, trunc bool, err error) {
	skip := hdrLen
	idx := head
	for count := uint16(0); ; count++ {
		if idx >= v.num || count >= v.num {
			return 0, false, fmt.Errorf("%w: vring %d head %d: index %d or loop (%d descriptors)", errBadChain, v.addr.Index, head, idx, count)
		}
		d := v.descAt(idx)
		if d.flags&(descFIndirect|descFWrite) != 0 {
			return 0, false, fmt.Errorf("%w: vring %d desc %d: flags %#x on a TX chain", errBadChain, v.addr.Index, idx, d.flags)
		}
		buf, ok := mt.guest(d.addr, d.len)
		if !ok {
			return 0, false, fmt.Errorf("%w: vring %d desc %d: addr %#x len %d", errBadAddress, v.addr.Index, idx, d.addr, d.len)
		}
		if skip > 0 {
			s := min(skip, len(buf))
			buf, skip = buf[s:], skip-s
		}
		c := copy(dst[min(n, len(dst)):], buf)
		if c < len(buf) {
			trunc = true
		}
		n += len(buf)
		if d.flags&descFNext == 0 {
			return n, trunc, nil
		}
		idx = d.next
	}
}

// rxWriter streams a virtio-net header and a frame into guest RX chains.
type rxWriter struct {
	hdr   [12]byte
	hlen  int
	frame []byte
	pos   int    // bytes of hdr+frame written so far
	nbuf  []byte // where num_buffers lives in guest memory, for the mergeable patch
}

func (w *rxWriter) total() int { return w.hlen + len(w.frame) }

// writeChain writes as much of the remaining stream as fits in one chain and
// returns the bytes written to it.
func (v *vring) writeChain(mt *memTable, head uint16, w *rxWriter) (uint32, error) {
	var written uint32
	idx := head
	for count := uint16(0); ; count++ {
		if idx >= v.num || count >= v.num {
			return 0, fmt.Errorf("%w: vring %d head %d: index %d or loop (%d descriptors)", errBadChain, v.addr.Index, head, idx, count)
		}
		d := v.descAt(idx)
		if d.flags&descFIndirect != 0 || d.flags&descFWrite == 0 {
			return 0, fmt.Errorf("%w: vring %d desc %d: flags %#x on an RX chain", errBadChain, v.addr.Index, idx, d.flags)
		}
		buf, ok := mt.guest(d.addr, d.len)
		if !ok {
			return 0, fmt.Errorf("%w: vring %d desc %d: addr %#x len %d", errBadAddress, v.addr.Index, idx, d.addr, d.len)
		}
		if w.pos == 0 {
			// The header must not straddle descriptors so num_buffers can
			// be patched in place; every known driver gives it room.
			if len(buf) < w.hlen {
				return 0, fmt.Errorf("%w: vring %d desc %d: %d bytes, header needs %d", errBadChain, v.addr.Index, idx, len(buf), w.hlen)
			}
			copy(buf, w.hdr[:w.hlen])
			if w.hlen >= 12 {
				w.nbuf = buf[10:12]
			}
			buf = buf[w.hlen:]
			w.pos = w.hlen
			written += uint32(w.hlen)
		}
		c := copy(buf, w.frame[w.pos-w.hlen:])
		w.pos += c
		written += uint32(c)
		if w.pos == w.total() || d.flags&descFNext == 0 {
			return written, nil
		}
		idx = d.next
	}
}
