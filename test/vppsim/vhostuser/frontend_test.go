package vhostuser

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// frontend is a minimal vhost-user frontend (the guest side, as QEMU or DPDK
// virtio-user): memfd memory, two split rings with fixed-size descriptor
// slots, eventfds. It exists to drive the backend from tests.
const (
	feRingSize  = 256
	feSlot      = 8 // descriptors per chain slot
	feBufStride = 2048
	feRegion    = 4 << 20
	feMmapOff   = 4096
	feGPA       = 0x1_0000_0000
	feUA        = 0x7f00_0000_0000
)

type feRing struct {
	base     int // offset of the ring area in the region
	bufs     int // offset of the buffers
	availIdx uint16
	lastUsed uint16
	kick     int
	call     int
}

type frontend struct {
	t        testing.TB
	c        *net.UnixConn
	memfd    int
	mapping  []byte
	mem      []byte // the region, mapping[feMmapOff:]
	rings    [2]feRing
	features uint64
	hdrLen   int
	ack      bool
	one      [8]byte // eventfd increment; a field so kicking never allocates
}

func newFrontend(t testing.TB) *frontend {
	t.Helper()
	fd, err := unix.MemfdCreate("vhost-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	if err := unix.Ftruncate(fd, feMmapOff+feRegion); err != nil {
		t.Fatalf("ftruncate: %v", err)
	}
	m, err := unix.Mmap(fd, 0, feMmapOff+feRegion, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	f := &frontend{t: t, memfd: fd, mapping: m, mem: m[feMmapOff:], one: [8]byte{1}}
	for q := range f.rings {
		r := &f.rings[q]
		r.base = q * 64 << 10
		r.bufs = 256<<10 + q*(feRingSize*feBufStride)
		if r.kick, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		if r.call, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(f.close)
	return f
}

func (f *frontend) close() {
	if f.c != nil {
		f.c.Close()
	}
	for _, r := range f.rings {
		unix.Close(r.kick)
		unix.Close(r.call)
	}
	unix.Munmap(f.mapping)
	unix.Close(f.memfd)
}

func (f *frontend) dial(path string) {
	f.t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		f.t.Fatalf("dial %s: %v", path, err)
	}
	f.c = c
}

// rawSend writes one message; it reports write errors instead of failing
// because malformed-input tests expect the backend to hang up.
func (f *frontend) rawSend(req, flags uint32, payload []byte, fds ...int) error {
	b := make([]byte, headerSize+len(payload))
	putHeader(b, header{Request: req, Flags: flags, Size: uint32(len(payload))})
	copy(b[headerSize:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := f.c.WriteMsgUnix(b, oob, nil)
	return err
}

func (f *frontend) recvReply(req uint32) []byte {
	f.t.Helper()
	f.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hb [headerSize]byte
	if _, err := io.ReadFull(f.c, hb[:]); err != nil {
		f.t.Fatalf("reply to %s: %v", requestName(req), err)
	}
	h := header{binary.LittleEndian.Uint32(hb[:]), binary.LittleEndian.Uint32(hb[4:]), binary.LittleEndian.Uint32(hb[8:])}
	if h.Request != req || h.Flags != flagVersion|flagReply || h.Size > 64 {
		f.t.Fatalf("reply to %s: header %+v", requestName(req), h)
	}
	p := make([]byte, h.Size)
	if _, err := io.ReadFull(f.c, p); err != nil {
		f.t.Fatalf("reply to %s: %v", requestName(req), err)
	}
	return p
}

// call sends a request; with reply-ack negotiated it asks for and checks the ack.
func (f *frontend) call(req uint32, payload []byte, fds ...int) {
	f.t.Helper()
	flags := flagVersion
	if f.ack {
		flags |= flagNeedReply
	}
	if err := f.rawSend(req, flags, payload, fds...); err != nil {
		f.t.Fatalf("%s: %v", requestName(req), err)
	}
	if f.ack {
		if r := f.recvReply(req); len(r) != 8 || binary.LittleEndian.Uint64(r) != 0 {
			f.t.Fatalf("%s: ack %x", requestName(req), r)
		}
	}
}

func (f *frontend) get(req uint32, payload []byte) []byte {
	f.t.Helper()
	if err := f.rawSend(req, flagVersion, payload); err != nil {
		f.t.Fatalf("%s: %v", requestName(req), err)
	}
	return f.recvReply(req)
}

func state(idx, num uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, idx)
	return binary.LittleEndian.AppendUint32(b, num)
}

func (f *frontend) memTablePayload(size uint64) []byte {
	p := state(1, 0)
	for _, v := range []uint64{feGPA, size, feUA, feMmapOff} {
		p = binary.LittleEndian.AppendUint64(p, v)
	}
	return p
}

func (f *frontend) vringAddrPayload(q int) []byte {
	r := f.rings[q]
	p := state(uint32(q), 0)
	// desc, used, avail as frontend user addresses; no log.
	for _, v := range []uint64{feUA + uint64(r.base), feUA + uint64(r.base) + 8192, feUA + uint64(r.base) + 4096, 0} {
		p = binary.LittleEndian.AppendUint64(p, v)
	}
	return p
}

type feOpts struct {
	features  uint64 // 0: accept everything offered
	noProto   bool   // skip protocol features (rings start enabled)
	noEnable  bool
	skipRings bool
}

// handshake negotiates and sets up both rings, as virtio-user does at start.
func (f *frontend) handshake(o feOpts) {
	f.t.Helper()
	offered := binary.LittleEndian.Uint64(f.get(reqGetFeatures, nil))
	want := offered
	if o.features != 0 {
		want = offered & o.features
	}
	if o.noProto {
		want &^= 1 << featProtocolFeatures
	}
	f.features = want
	f.hdrLen = 10
	if want&(1<<featVersion1|1<<featMrgRxbuf) != 0 {
		f.hdrLen = 12
	}
	f.call(reqSetOwner, nil)
	if !o.noProto {
		pf := binary.LittleEndian.Uint64(f.get(reqGetProtocolFeatures, nil))
		if pf&(1<<protoReplyAck) == 0 {
			f.t.Fatalf("protocol features %#x lack REPLY_ACK", pf)
		}
		f.call(reqSetProtocolFeatures, binary.LittleEndian.AppendUint64(nil, 1<<protoReplyAck|1<<protoMQ))
		f.ack = true
		if n := binary.LittleEndian.Uint64(f.get(reqGetQueueNum, nil)); n < 1 {
			f.t.Fatalf("GET_QUEUE_NUM = %d", n)
		}
	}
	f.call(reqSetFeatures, binary.LittleEndian.AppendUint64(nil, want))
	f.call(reqSetMemTable, f.memTablePayload(feRegion), f.memfd)
	if o.skipRings {
		return
	}
	for q := range f.rings {
		f.setupRing(q, !o.noEnable && !o.noProto)
	}
}

func (f *frontend) setupRing(q int, enable bool) {
	r := &f.rings[q]
	r.availIdx, r.lastUsed = 0, 0
	clear(f.mem[r.base : r.base+64<<10])
	f.call(reqSetVringNum, state(uint32(q), feRingSize))
	f.call(reqSetVringBase, state(uint32(q), 0))
	f.call(reqSetVringAddr, f.vringAddrPayload(q))
	f.call(reqSetVringCall, binary.LittleEndian.AppendUint64(nil, uint64(q)), r.call)
	f.call(reqSetVringKick, binary.LittleEndian.AppendUint64(nil, uint64(q)), r.kick)
	if enable {
		f.call(reqSetVringEnable, state(uint32(q), 1))
	}
}

// word32 is the frontend's atomic view of an aligned ring word.
func (f *frontend) word32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&f.mem[off])) }

func (f *frontend) setDesc(q int, d int, addr uint64, n uint32, flags, next uint16) {
	b := f.mem[f.rings[q].base+d*descSize:]
	binary.LittleEndian.PutUint64(b, addr)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
}

func (f *frontend) bufOff(q, d int) int { return f.rings[q].bufs + d*feBufStride }

// publish makes head the next available chain of ring q.
func (f *frontend) publish(q int, head uint16, kick bool) {
	r := &f.rings[q]
	av := r.base + 4096
	binary.LittleEndian.PutUint16(f.mem[av+4+2*int(r.availIdx%feRingSize):], head)
	r.availIdx++
	w := f.word32(av)
	atomic.StoreUint32(w, atomic.LoadUint32(w)&0xffff|uint32(r.availIdx)<<16)
	if kick {
		unix.Write(r.kick, f.one[:])
	}
}

func (f *frontend) setNoInterrupt(q int, on bool) {
	w := f.word32(f.rings[q].base + 4096)
	v := atomic.LoadUint32(w) &^ availFNoInterrupt
	if on {
		v |= availFNoInterrupt
	}
	atomic.StoreUint32(w, v)
}

func (f *frontend) slotHead(q int) int {
	return int(f.rings[q].availIdx%(feRingSize/feSlot)) * feSlot
}

// postRx posts n receive chains of bufs descriptors of size bytes each.
func (f *frontend) postRx(n, bufs int, size uint32) {
	for k := range n {
		head := f.slotHead(0)
		for i := range bufs {
			d := head + i
			flags := uint16(descFWrite)
			if i < bufs-1 {
				flags |= descFNext
			}
			f.setDesc(0, d, feGPA+uint64(f.bufOff(0, d)), size, flags, uint16(d+1))
		}
		f.publish(0, uint16(head), k == n-1)
	}
}

// sendTx queues frames on ring 1, each as a header descriptor followed by
// pieces of at most split bytes (0: one piece).
func (f *frontend) sendTx(frames [][]byte, split int, kick bool) {
	f.t.Helper()
	for _, fr := range frames {
		head := f.slotHead(1)
		d := head
		f.setDesc(1, d, feGPA+uint64(f.bufOff(1, d)), uint32(f.hdrLen), descFNext, uint16(d+1))
		clear(f.mem[f.bufOff(1, d) : f.bufOff(1, d)+f.hdrLen])
		rest := fr
		for {
			d++
			if d >= head+feSlot {
				f.t.Fatalf("frame of %d bytes needs more than %d descriptors", len(fr), feSlot)
			}
			piece := rest
			if split > 0 && len(piece) > split {
				piece = piece[:split]
			}
			copy(f.mem[f.bufOff(1, d):], piece)
			rest = rest[len(piece):]
			flags := uint16(0)
			if len(rest) > 0 {
				flags = descFNext
			}
			f.setDesc(1, d, feGPA+uint64(f.bufOff(1, d)), uint32(len(piece)), flags, uint16(d+1))
			if len(rest) == 0 {
				break
			}
		}
		f.publish(1, uint16(head), kick)
	}
}

func (f *frontend) usedIdx(q int) uint16 {
	return uint16(atomic.LoadUint32(f.word32(f.rings[q].base+8192)) >> 16)
}

func (f *frontend) usedFlags(q int) uint16 {
	return uint16(atomic.LoadUint32(f.word32(f.rings[q].base + 8192)))
}

func (f *frontend) usedElem(q int, i uint16) (id, n uint32) {
	e := f.mem[f.rings[q].base+8192+4+8*int(i%feRingSize):]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// reapTx returns how many TX chains the backend has completed since last call.
func (f *frontend) reapTx() int {
	r := &f.rings[1]
	u := f.usedIdx(1)
	n := int(u - r.lastUsed)
	r.lastUsed = u
	return n
}

// recvRx collects received frames, reassembling mergeable buffers, and
// returns them with each frame's num_buffers.
func (f *frontend) recvRx() (frames [][]byte, nbufs []int) {
	f.t.Helper()
	r := &f.rings[0]
	u := f.usedIdx(0)
	for r.lastUsed != u {
		id, n := f.usedElem(0, r.lastUsed)
		r.lastUsed++
		data := f.chainData(int(id), int(n))
		if len(data) < f.hdrLen {
			f.t.Fatalf("rx used element %d: %d bytes", id, n)
		}
		nb := 1
		if f.hdrLen == 12 {
			nb = int(binary.LittleEndian.Uint16(data[10:]))
		}
		fr := append([]byte(nil), data[f.hdrLen:]...)
		for i := 1; i < nb; i++ {
			if r.lastUsed == u {
				f.t.Fatalf("num_buffers %d but only %d used elements", nb, i)
			}
			id, n := f.usedElem(0, r.lastUsed)
			r.lastUsed++
			fr = append(fr, f.chainData(int(id), int(n))...)
		}
		frames = append(frames, fr)
		nbufs = append(nbufs, nb)
	}
	return frames, nbufs
}

// discardRx consumes received frames without looking at them.
func (f *frontend) discardRx() int {
	r := &f.rings[0]
	u := f.usedIdx(0)
	n := int(u - r.lastUsed)
	r.lastUsed = u
	return n
}

// chainData reads n bytes written into the chain starting at descriptor head.
func (f *frontend) chainData(head, n int) []byte {
	var out []byte
	for d := head; n > 0; d++ {
		b := f.mem[f.rings[0].base+d*descSize:]
		l := min(int(binary.LittleEndian.Uint32(b[8:])), n)
		off := int(binary.LittleEndian.Uint64(b) - feGPA)
		out = append(out, f.mem[off:off+l]...)
		n -= l
	}
	return out
}

// waitClosed asserts that the backend hung up on this frontend.
func (f *frontend) waitClosed() {
	f.t.Helper()
	f.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [64]byte
	for {
		_, err := f.c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			f.t.Fatalf("backend kept the connection open")
		}
		return
	}
}

func eventCount(fd int) uint64 {
	var b [8]byte
	if n, err := unix.Read(fd, b[:]); err != nil || n != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

func listenUnix(path string) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// countMappings counts this process's mappings of the file with inode ino.
func countMappings(t testing.TB, ino uint64) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && fields[4] == strconv.FormatUint(ino, 10) {
			n++
		}
	}
	return n
}
