package vppsim

import "sync"

// txSide is the transmit half every packet driver shares: one transmitter at
// a time (bridges and xconnects share an egress), single frames turned into
// bursts without allocating, and a closed flag that stops transmission.
type txSide struct {
	mu     sync.Mutex
	one    [1][]byte
	closed bool
	// burst sends frames; it runs with mu held and closed false.
	burst func(frames [][]byte) (int, DropReason)
}

// Transmit sends one frame (bridge forwarding and flooding).
func (t *txSide) Transmit(frame []byte) error {
	t.mu.Lock()
	t.one[0] = frame
	n, reason := t.burstLocked(t.one[:])
	t.one[0] = nil
	t.mu.Unlock()
	if n == 1 {
		return nil
	}
	if reason == DropLinkDown {
		return ErrLinkDown
	}
	return ErrTxFull
}

// TransmitBurst sends a batch; frames it does not take are the caller's
// drops, for the returned reason.
func (t *txSide) TransmitBurst(frames [][]byte) (int, DropReason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.burstLocked(frames)
}

func (t *txSide) burstLocked(frames [][]byte) (int, DropReason) {
	if t.closed {
		return 0, DropLinkDown
	}
	return t.burst(frames)
}

// close stops transmission; a burst in progress finishes first.
func (t *txSide) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}
