package vppsim

import (
	"maps"
	"sync"
	"time"
)

// faults holds the injected misbehaviour and the per-message call counts. It outlives
// restarts so a test can arm a fault, restart, and observe it.
type faults struct {
	mu       sync.Mutex
	counts   map[string]uint64
	latency  map[string]time.Duration // "" applies to every message
	failures map[string]*failure
	hung     chan struct{} // non-nil while hung; closed on resume
}

type failure struct {
	remaining int
	retval    int32
}

func newFaults() *faults {
	return &faults{
		counts:   map[string]uint64{},
		latency:  map[string]time.Duration{},
		failures: map[string]*failure{},
	}
}

func (f *faults) count(name string) {
	f.mu.Lock()
	f.counts[name]++
	f.mu.Unlock()
}

// wait applies a hang and the configured latency before a message is served.
func (f *faults) wait(done <-chan struct{}, name string) error {
	f.mu.Lock()
	hung := f.hung
	d, ok := f.latency[name]
	if !ok {
		d = f.latency[""]
	}
	f.mu.Unlock()
	if hung != nil {
		select {
		case <-hung:
		case <-done:
			return errClientGone
		}
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
			return errClientGone
		}
	}
	return nil
}

func (f *faults) takeFailure(name string) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.failures[name]
	if fl == nil {
		return 0, false
	}
	fl.remaining--
	if fl.remaining <= 0 {
		delete(f.failures, name)
	}
	return fl.retval, true
}

func (f *faults) hang() {
	f.mu.Lock()
	if f.hung == nil {
		f.hung = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *faults) resume() {
	f.mu.Lock()
	if f.hung != nil {
		close(f.hung)
		f.hung = nil
	}
	f.mu.Unlock()
}

// CallCounts returns how many times each message (by name, without CRC) was received
// since start or the last ResetCallCounts.
func (s *Sim) CallCounts() map[string]uint64 {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return maps.Clone(s.faults.counts)
}

// ResetCallCounts zeroes every call count.
func (s *Sim) ResetCallCounts() {
	s.faults.mu.Lock()
	s.faults.counts = map[string]uint64{}
	s.faults.mu.Unlock()
}

// SetLatency delays every subsequent msg (by name, e.g. "memif_create_v2") by d before
// it is served; msg "" sets the default for all messages. d = 0 removes the delay.
func (s *Sim) SetLatency(msg string, d time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if d <= 0 {
		delete(s.faults.latency, msg)
		return
	}
	s.faults.latency[msg] = d
}

// FailNext makes the next n calls of msg answer with retval without any effect. A dump
// armed this way returns no details. n <= 0 disarms.
func (s *Sim) FailNext(msg string, n int, retval int32) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if n <= 0 {
		delete(s.faults.failures, msg)
		return
	}
	s.faults.failures[msg] = &failure{remaining: n, retval: retval}
}

// Hang stops answering every message (including control_ping) until Resume or Restart;
// connections stay open, as with a VPP stuck in a long operation.
func (s *Sim) Hang() { s.faults.hang() }

// Resume answers again; messages received while hung are served in order.
func (s *Sim) Resume() { s.faults.resume() }

// ClearFaults removes latency, armed failures and a hang.
func (s *Sim) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.latency = map[string]time.Duration{}
	s.faults.failures = map[string]*failure{}
	s.faults.mu.Unlock()
	s.faults.resume()
}
