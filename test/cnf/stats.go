package cnf

import (
	"sync/atomic"
	"time"
)

// Summary is the CNF's report: the final JSON line on stdout, the --stats-file content and
// the SIGUSR1 dump. Sent counts only frames the memif ring accepted.
type Summary struct {
	Mode       string `json:"mode"`
	Sent       uint64 `json:"sent"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Reordered  uint64 `json:"reordered"`
	Duplicates uint64 `json:"duplicates"`
	// Bytes is the traffic of the mode's direction: sent bytes for gen, received for
	// sink and reflect.
	Bytes   uint64 `json:"bytes"`
	TxBytes uint64 `json:"tx_bytes"`
	RxBytes uint64 `json:"rx_bytes"`
	// PPS is the mode's frame count over DurationS.
	PPS float64 `json:"pps"`
	// DurationS runs from the first to the last frame of the mode's direction; ElapsedS is
	// the whole run including waiting for the link and for traffic.
	DurationS float64 `json:"duration_s"`
	ElapsedS  float64 `json:"elapsed_s"`
	// Foreign counts received frames without a CNF header (or of streams beyond the limit).
	Foreign uint64 `json:"foreign"`
	// RxDrops counts frames the memif dropped for exceeding the receive buffer.
	RxDrops uint64 `json:"rx_drops"`
	// TxRingFull counts bursts the ring cut short (back-pressure, retried).
	TxRingFull uint64 `json:"tx_ring_full"`
	// TxDropped counts reflected frames abandoned because the link went down.
	TxDropped uint64 `json:"tx_dropped"`
	LinkUps   uint64 `json:"link_ups"`
	Streams   int    `json:"streams"`
}

// counters are updated once per burst by the workers and read by snapshots from any
// goroutine.
type counters struct {
	sent, txBytes, received, rxBytes atomic.Uint64
	rxDrops, txFull, txDropped       atomic.Uint64
	linkUps                          atomic.Uint64
	// first and last frame of the mode's direction, monotonic nanoseconds since start.
	first, last atomic.Int64
}

// mark records traffic at now (relative to start) for the duration figure.
func (c *counters) mark(since time.Duration) {
	ns := int64(since)
	if ns <= 0 {
		ns = 1 // zero means "nothing yet"
	}
	c.first.CompareAndSwap(0, ns)
	c.last.Store(ns)
}

func (c *counters) fill(s *Summary, mode Mode, elapsed time.Duration) {
	s.Mode = string(mode)
	s.Sent = c.sent.Load()
	s.TxBytes = c.txBytes.Load()
	s.Received = c.received.Load()
	s.RxBytes = c.rxBytes.Load()
	s.RxDrops = c.rxDrops.Load()
	s.TxRingFull = c.txFull.Load()
	s.TxDropped = c.txDropped.Load()
	s.LinkUps = c.linkUps.Load()
	s.ElapsedS = elapsed.Seconds()
	frames := s.Received
	s.Bytes = s.RxBytes
	if mode == ModeGen {
		frames = s.Sent
		s.Bytes = s.TxBytes
	}
	if first, last := c.first.Load(), c.last.Load(); first != 0 && last > first {
		s.DurationS = time.Duration(last - first).Seconds()
		s.PPS = float64(frames) / s.DurationS
	}
}
