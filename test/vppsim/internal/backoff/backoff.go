// Package backoff paces accept loops that hit temporary errors (EMFILE,
// ENFILE, ECONNABORTED): they wait and retry instead of exiting, so a burst
// of connections cannot turn a listening socket off for good.
package backoff

import "time"

// Accept is an exponential backoff from Min to Max; the zero value uses
// 5ms and 1s.
type Accept struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns how long to wait before the next accept.
func (b *Accept) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 5 * time.Millisecond
	}
	if hi <= 0 {
		hi = time.Second
	}
	switch {
	case b.cur < lo:
		b.cur = lo
	case b.cur*2 > hi:
		b.cur = hi
	default:
		b.cur *= 2
	}
	return b.cur
}

// Reset starts over after a successful accept.
func (b *Accept) Reset() { b.cur = 0 }
