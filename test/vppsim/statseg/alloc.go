package statseg

import (
	"sort"
	"time"
)

// span is a range of the segment handed out by the allocator.
type span struct{ off, size uint64 }

type retired struct {
	span
	at time.Time
}

// allocator hands out blocks of a fixed-size segment. A block that readers may
// still be walking is not reused until grace has passed since it was retired:
// VPP frees right away and relies on the epoch check, but a reader that follows
// a pointer into reused memory can read a garbage length and run off its
// mapping before it ever gets to that check.
type allocator struct {
	limit      uint64
	next       uint64
	free       []span // sorted by offset, coalesced
	quarantine []retired
	grace      time.Duration
	now        func() time.Time
}

func newAllocator(start, limit uint64, grace time.Duration, now func() time.Time) *allocator {
	return &allocator{limit: limit, next: roundUp(start, blockAlign), grace: grace, now: now}
}

func roundUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// alloc returns an aligned block of at least size bytes, or false when the
// segment is full.
func (a *allocator) alloc(size uint64) (span, bool) {
	size = roundUp(size, blockAlign)
	if s, ok := a.fromFree(size); ok {
		return s, true
	}
	if a.next+size <= a.limit && a.next+size > a.next {
		s := span{a.next, size}
		a.next += size
		return s, true
	}
	if a.reclaim() {
		return a.fromFree(size)
	}
	return span{}, false
}

func (a *allocator) fromFree(size uint64) (span, bool) {
	for i, f := range a.free {
		if f.size < size {
			continue
		}
		s := span{f.off, size}
		if f.size == size {
			a.free = append(a.free[:i], a.free[i+1:]...)
		} else {
			a.free[i] = span{f.off + size, f.size - size}
		}
		return s, true
	}
	return span{}, false
}

// retire queues a block readers may still see; it becomes reusable after grace.
func (a *allocator) retire(s span) {
	if s.size == 0 {
		return
	}
	a.quarantine = append(a.quarantine, retired{s, a.now()})
}

// release returns a block no reader has ever seen (it was never published).
func (a *allocator) release(s span) {
	if s.size == 0 {
		return
	}
	a.free = append(a.free, s)
	a.coalesce()
}

// reclaim moves blocks whose grace has passed to the free list.
func (a *allocator) reclaim() bool {
	now := a.now()
	kept := a.quarantine[:0]
	moved := false
	for _, r := range a.quarantine {
		if now.Sub(r.at) >= a.grace {
			a.free = append(a.free, r.span)
			moved = true
			continue
		}
		kept = append(kept, r)
	}
	a.quarantine = kept
	if moved {
		a.coalesce()
	}
	return moved
}

func (a *allocator) coalesce() {
	sort.Slice(a.free, func(i, j int) bool { return a.free[i].off < a.free[j].off })
	out := a.free[:0]
	for _, f := range a.free {
		if n := len(out); n > 0 && out[n-1].off+out[n-1].size == f.off {
			out[n-1].size += f.size
			continue
		}
		out = append(out, f)
	}
	a.free = out
}

// inUse is the number of bytes handed out and not yet reusable.
func (a *allocator) inUse() uint64 {
	used := a.next
	for _, f := range a.free {
		used -= f.size
	}
	return used
}
