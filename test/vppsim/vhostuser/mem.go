package vhostuser

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

var errBadAddress = errors.New("address outside the frontend's memory table")

// region is one frontend memory region mapped into this process.
type region struct {
	gpa, uaddr, size uint64
	mapping          []byte // whole mmap, kept for munmap
	data             []byte // mapping[mmap_offset:], size bytes
}

// memTable is the frontend's memory as sent by SET_MEM_TABLE.
type memTable struct {
	regions []region
}

// mapMemTable mmaps every region's fd. It takes ownership of fds and closes
// them: the mappings keep the memory alive.
func mapMemTable(descs []memRegionDesc, fds []int) (*memTable, error) {
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(fds) != len(descs) {
		return nil, fmt.Errorf("%w: SET_MEM_TABLE: %d regions with %d fds", errMalformed, len(descs), len(fds))
	}
	mt := &memTable{}
	for i, d := range descs {
		end := d.MmapOffset + d.Size
		var st unix.Stat_t
		if err := unix.Fstat(fds[i], &st); err != nil {
			mt.unmap()
			return nil, fmt.Errorf("SET_MEM_TABLE region %d: fstat: %w", i, err)
		}
		// A file shorter than the region would turn a guest access into
		// SIGBUS in this process; refuse it up front. Char devices and
		// hugetlbfs report sizes too, so this holds for all fd kinds we see.
		if st.Size < 0 || uint64(st.Size) < end {
			mt.unmap()
			return nil, fmt.Errorf("%w: SET_MEM_TABLE region %d: file is %d bytes, region needs %d", errMalformed, i, st.Size, end)
		}
		m, err := unix.Mmap(fds[i], 0, int(end), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			mt.unmap()
			return nil, fmt.Errorf("SET_MEM_TABLE region %d: mmap %d bytes: %w", i, end, err)
		}
		mt.regions = append(mt.regions, region{gpa: d.GuestPhys, uaddr: d.UserAddr, size: d.Size,
			mapping: m, data: m[d.MmapOffset:end:end]})
	}
	return mt, nil
}

func (mt *memTable) unmap() {
	if mt == nil {
		return
	}
	for _, r := range mt.regions {
		unix.Munmap(r.mapping)
	}
	mt.regions = nil
}

// guest returns the n bytes at guest physical address a (descriptor addresses).
func (mt *memTable) guest(a uint64, n uint32) ([]byte, bool) {
	for i := range mt.regions {
		r := &mt.regions[i]
		if a >= r.gpa && a-r.gpa < r.size && uint64(n) <= r.size-(a-r.gpa) {
			off := a - r.gpa
			return r.data[off : off+uint64(n) : off+uint64(n)], true
		}
	}
	return nil, false
}

// user returns the n bytes at frontend user address a (vring addresses, QEMU style).
func (mt *memTable) user(a, n uint64) ([]byte, bool) {
	for i := range mt.regions {
		r := &mt.regions[i]
		if a >= r.uaddr && a-r.uaddr < r.size && n <= r.size-(a-r.uaddr) {
			off := a - r.uaddr
			return r.data[off : off+n : off+n], true
		}
	}
	return nil, false
}
