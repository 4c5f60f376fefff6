package memif

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// region is one shared memory region: created by the slave, mapped by both peers.
type region struct {
	mem []byte
	fd  int
}

// createRegion makes a sealed memfd of size bytes and maps it. Sealing against shrink
// lets a master that checks seals trust the size it maps for as long as it holds it.
func createRegion(name string, size int) (*region, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create %q: %w", name, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ftruncate memfd %q to %d: %w", name, size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seal memfd %q: %w", name, err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap memfd %q (%d bytes): %w", name, size, err)
	}
	return &region{mem: mem, fd: fd}, nil
}

// mapRegion maps a region received from the peer, after checking that the file really
// holds size bytes: mapping past its end would fault on first touch instead of failing here.
func mapRegion(fd int, size uint64) (*region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat region fd: %w", err)
	}
	if size == 0 || size > 1<<32 || uint64(st.Size) < size {
		return nil, fmt.Errorf("region size %d invalid (file holds %d bytes, limit 4 GiB)", size, st.Size)
	}
	// The size check above holds only while the peer cannot shrink the file:
	// a peer that truncates it after we map it turns our next access into
	// SIGBUS. Require the shrink seal, as libmemif, DPDK and VPP set it on
	// their memfd regions (and createRegion does).
	if err := checkSealed(fd); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap region (%d bytes): %w", size, err)
	}
	return &region{mem: mem, fd: fd}, nil
}

// ErrNotSealed is the reason a peer's region is refused: its memfd lacks
// F_SEAL_SHRINK.
var ErrNotSealed = errors.New("region memory is not sealed against shrinking (F_SEAL_SHRINK)")

func checkSealed(fd int) error {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		// EINVAL: not a memfd or shmem file at all (no seals possible).
		return fmt.Errorf("%w: F_GET_SEALS: %v", ErrNotSealed, err)
	}
	if seals&unix.F_SEAL_SHRINK == 0 {
		return fmt.Errorf("%w: seals %#x", ErrNotSealed, seals)
	}
	return nil
}

func (r *region) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// desc is memif_desc_t of protocol 2.0 (16 bytes, naturally aligned fields).
type desc struct {
	flags    uint16
	region   uint16
	length   uint32
	offset   uint32
	metadata uint32
}

// ring is a view of memif_ring_t inside a mapped region. head shares a 32-bit word with
// flags and tail sits alone in the second cacheline; Go has no 16-bit atomics, so both
// are read with 32-bit atomic loads and written with compare-and-swap, which keeps the
// other half of the word (owned by the peer) intact and orders the descriptor writes.
type ring struct {
	hdr   []byte
	word1 *uint32 // flags | head<<16
	word2 *uint32 // tail | padding<<16
	descs []desc
	size  uint16
	mask  uint16
}

// newRing checks that a ring of 1<<log2 descriptors at off fits in mem and is aligned.
func newRing(mem []byte, off uint64, log2 uint8) (*ring, error) {
	if log2 > maxLog2Ring {
		return nil, fmt.Errorf("log2 ring size %d above %d", log2, maxLog2Ring)
	}
	n := uint64(1) << log2
	end := off + ringHdrSize + n*descSize
	if off%8 != 0 || end > uint64(len(mem)) || end < off {
		return nil, fmt.Errorf("ring at offset %d size %d outside region of %d bytes or misaligned", off, n, len(mem))
	}
	r := &ring{
		hdr:   mem[off : off+ringHdrSize],
		word1: (*uint32)(unsafe.Pointer(&mem[off+ringHeadOff])),
		word2: (*uint32)(unsafe.Pointer(&mem[off+ringTailOff])),
		descs: unsafe.Slice((*desc)(unsafe.Pointer(&mem[off+ringHdrSize])), n),
		size:  uint16(n), // 1<<14 at most; uint16 arithmetic on head/tail wraps correctly
		mask:  uint16(n - 1),
	}
	return r, nil
}

func (r *ring) cookie() uint32 { return atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.hdr[0]))) }

func (r *ring) init(flags uint16) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.hdr[0])), Cookie)
	atomic.StoreUint32(r.word1, uint32(flags))
	atomic.StoreUint32(r.word2, 0)
}

func (r *ring) head() uint16  { return uint16(atomic.LoadUint32(r.word1) >> 16) }
func (r *ring) flags() uint16 { return uint16(atomic.LoadUint32(r.word1)) }
func (r *ring) tail() uint16  { return uint16(atomic.LoadUint32(r.word2)) }

func (r *ring) setHead(h uint16) {
	for {
		o := atomic.LoadUint32(r.word1)
		if atomic.CompareAndSwapUint32(r.word1, o, o&0xffff|uint32(h)<<16) {
			return
		}
	}
}

func (r *ring) setFlags(f uint16) {
	for {
		o := atomic.LoadUint32(r.word1)
		if atomic.CompareAndSwapUint32(r.word1, o, o&0xffff0000|uint32(f)) {
			return
		}
	}
}

func (r *ring) setTail(t uint16) {
	for {
		o := atomic.LoadUint32(r.word2)
		if atomic.CompareAndSwapUint32(r.word2, o, o&0xffff0000|uint32(t)) {
			return
		}
	}
}

// newEventfd creates a non-blocking interrupt eventfd; peers expect EFD_NONBLOCK.
func newEventfd() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	return fd, nil
}

// eventFile wraps an eventfd for blocking reads through Go's poller.
func eventFile(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("set eventfd %s non-blocking: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}
