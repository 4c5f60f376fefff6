package cnf

// seqWindow is how far back (in sequence numbers) a stream remembers which frames it saw.
// A frame arriving later than that cannot be told apart from a duplicate; it is counted
// as reordered and its earlier gap stays counted as lost (conservative). 64 Ki numbers
// cost 8 KiB per stream.
const seqWindow = 1 << 16

// maxStreams bounds the memory a sink spends on stream ids it did not expect; frames of
// further streams are counted as foreign.
const maxStreams = 1024

// streamState checks one stream's sequence numbers. Sequence numbers start at 0, so frames
// missing before the first one received count as lost.
type streamState struct {
	next       uint64 // one past the highest sequence number seen
	missing    uint64 // numbers below next not (yet) received: lost unless they turn up
	reordered  uint64 // first arrivals below next
	duplicates uint64 // repeated arrivals within the window
	received   uint64
	seen       [seqWindow / 64]uint64
}

func (s *streamState) bit(seq uint64) (word int, mask uint64) {
	i := seq % seqWindow
	return int(i / 64), 1 << (i % 64)
}

func (s *streamState) add(seq uint64) {
	s.received++
	switch {
	case seq >= s.next:
		gap := seq - s.next
		s.missing += gap
		if gap+1 >= seqWindow {
			s.seen = [seqWindow / 64]uint64{}
		} else {
			// The slots of next..seq held numbers that have now left the window.
			for x := s.next; x <= seq; x++ {
				w, m := s.bit(x)
				s.seen[w] &^= m
			}
		}
		w, m := s.bit(seq)
		s.seen[w] |= m
		s.next = seq + 1
	case s.next-seq > seqWindow:
		s.reordered++
	default:
		w, m := s.bit(seq)
		if s.seen[w]&m != 0 {
			s.duplicates++
			return
		}
		s.seen[w] |= m
		s.reordered++
		s.missing--
	}
}

// tracker holds the per-stream state of one receiving CNF. It is not safe for concurrent
// use; the receive workers serialise on their owner's lock once per burst.
type tracker struct {
	streams map[uint32]*streamState
	foreign uint64
}

func newTracker() *tracker { return &tracker{streams: make(map[uint32]*streamState)} }

// add records one received frame.
func (t *tracker) add(f []byte, ipMode bool) {
	stream, seq, ok := parseFrame(f, ipMode)
	if !ok {
		t.foreign++
		return
	}
	s := t.streams[stream]
	if s == nil {
		if len(t.streams) >= maxStreams {
			t.foreign++
			return
		}
		s = &streamState{}
		t.streams[stream] = s
	}
	s.add(seq)
}

// seqTotals sums the per-stream verdicts.
type seqTotals struct {
	lost, reordered, duplicates, foreign uint64
	streams                              int
}

func (t *tracker) totals() seqTotals {
	r := seqTotals{foreign: t.foreign, streams: len(t.streams)}
	for _, s := range t.streams {
		r.lost += s.missing
		r.reordered += s.reordered
		r.duplicates += s.duplicates
	}
	return r
}
