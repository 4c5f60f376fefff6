package agent

import (
	"bytes"
	"sync"
)

// LogRing keeps the agent's last log lines in memory, for REST (/log/recent)
// and agentctl report. Put it beside stderr with io.MultiWriter under the
// slog JSON handler: the handler writes one record per Write.
type LogRing struct {
	mu    sync.Mutex
	lines [][]byte
	next  int
	full  bool
}

// maxLogLine bounds one kept line; a longer one is cut.
const maxLogLine = 4 << 10 // 2000 lines stay under 8 MiB

// NewLogRing keeps the last n lines (n < 1 keeps 1).
func NewLogRing(n int) *LogRing {
	if n < 1 {
		n = 1
	}
	return &LogRing{lines: make([][]byte, n)}
}

// Write keeps one record; it never fails.
func (r *LogRing) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	cp := append([]byte(nil), line...)
	r.mu.Lock()
	r.lines[r.next] = cp
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
	return len(p), nil
}

// Last returns up to n of the newest lines, oldest first.
func (r *LogRing) Last(n int) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all [][]byte
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}
