package kvscheduler

import "time"

// retryLoop starts a TxnRetry transaction whenever the earliest failed value
// is due. Commit wakes it after every transaction so that a new failure (or
// a success that removed one) re-arms the timer.
func (s *Scheduler) retryLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.mu.RLock()
		var next time.Time
		for k := range s.failed {
			if n := s.nodes[k]; n != nil && (next.IsZero() || n.retryAt().Before(next)) {
				next = n.retryAt()
			}
		}
		s.mu.RUnlock()
		var fire <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-s.closed:
			return
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-fire:
			if _, err := s.commit(s.stopCtx, Txn{Kind: TxnRetry, Description: "retry failed values"}, false); err != nil {
				return
			}
		}
	}
}
