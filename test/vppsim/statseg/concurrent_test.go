package statseg

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.fd.io/govpp/api"
)

// decodeK recovers the generation k a sample() value was made with; a value
// read from a wrong index, a wrong vector or garbage memory doesn't decode.
func decodeK(v uint64, idx uint32, field uint64) (uint64, bool) {
	if v == 0 {
		return 0, true // not written yet: an interface being added
	}
	r := v - uint64(idx)*1000 - field
	return r / 100000, r%100000 == 0
}

// TestConcurrentReadersDuringUpdates runs govpp readers on their own
// connections while the writer changes values and, now and then, adds
// interfaces. Every value read must be one the writer published for that
// interface and counter, and never go backwards.
func TestConcurrentReadersDuringUpdates(t *testing.T) {
	seg, path := newTestSegment(t)
	const updates = 400
	// A layout change every 40 updates, growing past the initial capacity.
	ifacesAt := func(k uint64) int { return 2 + int(min(k/40, 30)) }
	if err := seg.Update(ifaceSet(2, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var readsDone atomic.Int32
	for r := range 2 {
		conn := connectStats(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st api.InterfaceStats
			lastK := map[uint32]uint64{}
			reads, raced := 0, 0
			for {
				select {
				case <-done:
					t.Logf("reader %d: %d reads, %d govpp stale-directory races", r, reads, raced)
					return
				default:
				}
				if err := conn.GetInterfaceStats(&st); err != nil {
					// govpp's UpdateDir checks the epoch before waiting out
					// in_progress, so a layout change in that window makes one
					// call fail; the next call prepares a fresh directory.
					if strings.Contains(err.Error(), "stat data length incorrect") {
						raced++
						continue
					}
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				reads++
				if reads == 200 {
					readsDone.Add(1)
				}
				for _, c := range st.Interfaces {
					if c.InterfaceName != fmt.Sprintf("memif%d/0", c.InterfaceIndex) {
						errs <- fmt.Errorf("reader %d: sw_if_index %d named %q", r, c.InterfaceIndex, c.InterfaceName)
						return
					}
					for _, f := range []struct {
						v, field uint64
					}{{c.Rx.Packets, 1}, {c.Rx.Bytes, 2}, {c.Tx.Bytes, 4}, {c.Drops, 17}, {c.TxErrors, 25}} {
						k, ok := decodeK(f.v, c.InterfaceIndex, f.field)
						if !ok {
							errs <- fmt.Errorf("reader %d: sw_if_index %d field %d: value %d was never published", r, c.InterfaceIndex, f.field, f.v)
							return
						}
						if f.field == 1 {
							if k < lastK[c.InterfaceIndex] {
								errs <- fmt.Errorf("reader %d: sw_if_index %d went back from generation %d to %d", r, c.InterfaceIndex, lastK[c.InterfaceIndex], k)
								return
							}
							lastK[c.InterfaceIndex] = k
						}
					}
				}
			}
		}()
	}
	// Keep writing until both readers have overlapped many updates, however
	// the scheduler interleaves them.
	var k uint64
	for k = 2; k <= updates || (readsDone.Load() < 2 && k < 100*updates); k++ {
		if err := seg.Update(ifaceSet(ifacesAt(k), k)); err != nil {
			t.Fatalf("Update %d: %v", k, err)
		}
	}
	k--
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	final := ifacesAt(k)
	assertSame(t, "after concurrent updates", reader(t, connectStats(t, path)), ifaceSet(final, k), final)
}
