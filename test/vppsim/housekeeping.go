package vppsim

import (
	"context"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/statseg"
)

// statsInterval is how often interface counters are published to the stats segment
// (VPP's stats collector runs every 10 s by default; readers of vppsim want fresher
// numbers in short tests).
const statsInterval = 100 * time.Millisecond

// statsDuty bounds publishing to about 1/statsDuty of a core: after a publish that took
// d, the next one waits at least statsDuty*d. A snapshot of a few hundred interfaces
// takes microseconds and goes out at once; one of 20k interfaces takes milliseconds, and
// a bulk create (one kick per new interface) would otherwise republish back to back,
// holding the API lock for a full table walk each time.
const statsDuty = 10

// housekeeping advances the coarse clock, ages bridge MAC tables and publishes
// counters to the stats segment until ctx ends. One goroutine per Sim incarnation.
func (s *Sim) housekeeping(ctx context.Context, seg *statseg.Segment, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	var rows []statseg.InterfaceCounters
	lastAge := time.Now()
	var lastPub time.Time
	var cost time.Duration
	// retry wakes the loop for a publish the duty limit postponed.
	var retry <-chan time.Time
	for {
		now := time.Now()
		s.clock.set(now.UnixNano())
		if now.Sub(lastAge) >= time.Duration(s.ageScan.Load()) {
			lastAge = now
			s.ageBridges(now)
		}
		if seg != nil {
			if wait := lastPub.Add(statsDuty * cost).Sub(now); wait > 0 {
				if retry == nil {
					retry = time.After(wait)
				}
			} else {
				retry = nil
				lastPub = now
				rows = s.publishStats(seg, rows[:0])
				cost = time.Since(now)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.statsKick:
		case <-retry:
			retry = nil
		}
	}
}

// ageBridges removes learned MACs older than their domain's mac_age (minutes in VPP;
// s.macAgeUnit shortens the minute in tests).
func (s *Sim) ageBridges(now time.Time) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	for _, bd := range s.st.bds {
		if bd.macAge == 0 {
			continue
		}
		cutoff := now.Add(-time.Duration(bd.macAge) * time.Duration(s.macAgeUnit.Load())).UnixNano()
		if n := bd.fwd.age(cutoff); n > 0 {
			s.log.Debug("l2fib aged", "bd_id", bd.id, "entries", n)
		}
	}
}

// publishStats writes a full snapshot of every interface's counters.
func (s *Sim) publishStats(seg *statseg.Segment, rows []statseg.InterfaceCounters) []statseg.InterfaceCounters {
	s.stMu.Lock()
	for ifc := range s.st.all() {
		c := ifc.port.Counters()
		rows = append(rows, statseg.InterfaceCounters{
			SwIfIndex: ifc.idx, Name: ifc.name,
			Rx:      statseg.Pair{Packets: c.RxPackets, Bytes: c.RxBytes},
			Tx:      statseg.Pair{Packets: c.TxPackets, Bytes: c.TxBytes},
			Drops:   c.Drops,
			TxError: ifc.port.txErrors(),
		})
	}
	// VPP names a deleted interface's counters "deleted" until its index is reused.
	for _, idx := range s.st.free {
		rows = append(rows, statseg.InterfaceCounters{SwIfIndex: idx, Name: "deleted"})
	}
	s.stMu.Unlock()
	if err := seg.Update(rows); err != nil {
		s.log.Warn("stats segment update failed", "socket", seg.Path(), "err", err)
	}
	return rows
}

// kickStats asks for an early publish (interface added or deleted).
func (s *Sim) kickStats() {
	select {
	case s.statsKick <- struct{}{}:
	default:
	}
}

// startHousekeeping creates the stats segment (when configured) and starts the loop.
func (s *Sim) startHousekeeping() error {
	var seg *statseg.Segment
	if s.cfg.StatsSocket != "" {
		if err := ensureDir(s.cfg.StatsSocket); err != nil {
			return err
		}
		var err error
		seg, err = statseg.New(s.cfg.StatsSocket, statseg.WithLogger(s.log))
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.hkStop = func() {
		cancel()
		<-done
		if seg != nil {
			if err := seg.Close(); err != nil {
				s.log.Warn("stats segment close failed", "socket", s.cfg.StatsSocket, "err", err)
			}
		}
	}
	go s.housekeeping(ctx, seg, done)
	return nil
}
