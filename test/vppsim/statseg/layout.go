package statseg

import (
	"sync/atomic"
	"unsafe"
)

// The shared header VPP puts first in the segment (vlib_stats_shared_header_t),
// as 64-bit words. govpp reads a sixth word as the legacy error vector; it
// stays zero so readers use the version 2 directory type numbering.
const (
	hdrVersion     = 0
	hdrBase        = 8
	hdrEpoch       = 16
	hdrInProgress  = 24
	hdrDirectory   = 32
	hdrErrorVector = 40
	headerSize     = 64

	segmentVersion = 2
)

// segmentBase is the address the segment claims to live at in the serving
// process; every pointer stored in the segment is segmentBase plus an offset
// and readers subtract the header's base, as with VPP. It is deliberately not
// zero so that a reader which forgets the adjustment fails loudly, and it sits
// where mmap places memory, far from any Go heap arena.
const segmentBase uint64 = 0x7f00_0000_0000

// Directory entry types of format version 2 (stat_directory_type_t).
const (
	dirScalarIndex    = 1
	dirCounterSimple  = 2
	dirCounterCombine = 3
	dirNameVector     = 4
	dirEmpty          = 5
)

// A directory entry (vlib_stats_entry_t): a 32-bit type, padding, a 64-bit
// union (value or data pointer) and a NUL-terminated name.
const (
	entryType    = 0
	entryUnion   = 8
	entryName    = 16
	entryNameMax = 128
	entrySize    = entryName + entryNameMax
)

// vecHeaderSize is VPP's vec_header_t, which sits right before a vector's
// data: the element count in its low 32 bits, then sizing hints readers
// ignore.
const vecHeaderSize = 8

// blockAlign mirrors VPP's cache-line aligned counter vectors; a block starts
// aligned, its vector header takes the last word of the first line and the
// data starts on the next line.
const blockAlign = 64

// mem is the writable mapping of the segment. All stores that a reader may
// observe concurrently are atomic so that a reader sees old or new words,
// never torn ones, and sees them after the pointers that lead to them.
type mem []byte

func (m mem) word(off uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&m[off]))
}

func (m mem) store(off, v uint64) { atomic.StoreUint64(m.word(off), v) }

func (m mem) load(off uint64) uint64 { return atomic.LoadUint64(m.word(off)) }

// ptr is the in-segment pointer value for an offset; 0 stays the null pointer.
func ptr(off uint64) uint64 {
	if off == 0 {
		return 0
	}
	return segmentBase + off
}

// vec is a VPP vector the writer owns: data offset, capacity in elements and
// the block it lives in.
type vec struct {
	data     uint64
	capElems uint64
	elemSize uint64
	block    span
}

func (m mem) setVecLen(v vec, n uint64) { m.store(v.data-vecHeaderSize, n) }

func (m mem) vecLen(v vec) uint64 { return m.load(v.data-vecHeaderSize) & 0xffffffff }
