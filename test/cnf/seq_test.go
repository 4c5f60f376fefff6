package cnf

import (
	"math/rand/v2"
	"testing"
)

// refModel is the plain definition the tracker must agree with: a duplicate is any repeat,
// a reordered frame is a first arrival below the highest number seen, and lost is every
// number up to the highest seen that never arrived.
type refModel struct {
	seen                  map[uint64]bool
	next                  uint64
	reordered, duplicates uint64
}

func (m *refModel) add(seq uint64) {
	switch {
	case m.seen[seq]:
		m.duplicates++
	case seq < m.next:
		m.reordered++
	}
	m.seen[seq] = true
	if seq >= m.next {
		m.next = seq + 1
	}
}

func (m *refModel) lost() uint64 { return m.next - uint64(len(m.seen)) }

func TestStreamStateCases(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		seqs                  []uint64
		lost, reord, dup, rcv uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 0, 0, 0, 4},
		{"loss at start", []uint64{3, 4}, 3, 0, 0, 2},
		{"gap", []uint64{0, 1, 4, 5}, 2, 0, 0, 4},
		{"swap", []uint64{0, 2, 1, 3}, 0, 1, 0, 4},
		{"duplicate", []uint64{0, 1, 1, 2}, 0, 0, 1, 4},
		{"late duplicate", []uint64{0, 2, 1, 1}, 0, 1, 1, 4},
		{"gap then partly filled", []uint64{0, 5, 2, 3}, 2, 2, 0, 4},
		{"beyond window", []uint64{0, seqWindow + 10, 5}, seqWindow + 9, 1, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s streamState
			for _, q := range tc.seqs {
				s.add(q)
			}
			if s.missing != tc.lost || s.reordered != tc.reord || s.duplicates != tc.dup || s.received != tc.rcv {
				t.Fatalf("lost/reordered/dup/received = %d/%d/%d/%d, want %d/%d/%d/%d",
					s.missing, s.reordered, s.duplicates, s.received, tc.lost, tc.reord, tc.dup, tc.rcv)
			}
		})
	}
}

// TestStreamStateRandom feeds random arrival orders (drops, duplicates, local reordering,
// occasional big jumps) and compares with the reference model after every frame.
func TestStreamStateRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var s streamState
		m := &refModel{seen: map[uint64]bool{}}
		var arrivals []uint64
		var seq uint64
		for range 2000 {
			switch p := rng.IntN(100); {
			case p < 10: // drop
				seq++
			case p < 15 && seq > 0: // duplicate of a recent frame
				arrivals = append(arrivals, seq-1-uint64(rng.IntN(int(min(seq, 100)))))
			case p < 17: // jump (a burst lost), sometimes beyond the window
				seq += uint64(rng.IntN(3 * seqWindow / 2))
			default:
				arrivals = append(arrivals, seq)
				seq++
			}
		}
		// Local reordering: swap neighbours within a small distance.
		for i := range arrivals {
			if j := i + rng.IntN(8); j < len(arrivals) && rng.IntN(4) == 0 {
				arrivals[i], arrivals[j] = arrivals[j], arrivals[i]
			}
		}
		for i, q := range arrivals {
			// Frames older than the window are outside the tracker's contract.
			if s.next > q && s.next-q > seqWindow {
				continue
			}
			s.add(q)
			m.add(q)
			if s.missing != m.lost() || s.reordered != m.reordered || s.duplicates != m.duplicates {
				t.Fatalf("round %d arrival %d (seq %d): tracker lost/reordered/dup %d/%d/%d, model %d/%d/%d",
					round, i, q, s.missing, s.reordered, s.duplicates, m.lost(), m.reordered, m.duplicates)
			}
		}
	}
}

func TestTrackerForeignAndStreamLimit(t *testing.T) {
	tr := newTracker()
	tr.add([]byte("short"), false)
	f := craft(t, false, 64, 7, 0)
	f[12] = 0x86 // not IPv4
	tr.add(f, false)
	for i := range maxStreams + 3 {
		tr.add(craft(t, false, 64, uint32(i), 0), false)
	}
	got := tr.totals()
	if got.foreign != 5 || got.streams != maxStreams {
		t.Fatalf("foreign %d streams %d, want 5 and %d", got.foreign, got.streams, maxStreams)
	}
}

func TestTrackerZeroAllocs(t *testing.T) {
	tr := newTracker()
	f := craft(t, false, 64, 1, 0)
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		stampSeq(f, false, seq)
		seq++
		tr.add(f, false)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}
