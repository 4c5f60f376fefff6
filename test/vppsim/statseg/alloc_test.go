package statseg

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestAllocatorHoldsRetiredBlocksForGrace(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := newAllocator(4096, 4096+4*blockAlign, time.Second, clk.now)
	var blocks []span
	for range 4 {
		b, ok := a.alloc(blockAlign)
		if !ok {
			t.Fatalf("alloc with room left failed")
		}
		blocks = append(blocks, b)
	}
	if _, ok := a.alloc(1); ok {
		t.Fatalf("alloc beyond the limit succeeded")
	}
	a.retire(blocks[1])
	a.retire(blocks[2])
	if _, ok := a.alloc(1); ok {
		t.Fatalf("a retired block was reused before its grace passed")
	}
	clk.t = clk.t.Add(time.Second)
	// The two adjacent retired blocks coalesce into one of twice the size.
	b, ok := a.alloc(2 * blockAlign)
	if !ok || b.off != blocks[1].off {
		t.Fatalf("after grace: got %+v %v, want the coalesced block at %d", b, ok, blocks[1].off)
	}
	a.release(b)
	if used := a.inUse(); used != 4096+2*blockAlign {
		t.Fatalf("in use %d after release, want %d", used, 4096+2*blockAlign)
	}
}

// Renaming interfaces over and over must not exhaust a small segment: the
// replaced name vectors come back once their grace has passed.
func TestRenamesReuseMemory(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	seg, _ := newTestSegment(t, WithSize(64<<10))
	seg.alloc.now = clk.now
	for i := range 2000 {
		in := ifaceSet(8, 1)
		for j := range in {
			in[j].Name = fmt.Sprintf("if%d-gen%d", j, i)
		}
		if err := seg.Update(in); err != nil {
			t.Fatalf("rename round %d: %v", i, err)
		}
		clk.t = clk.t.Add(100 * time.Millisecond)
	}
}
