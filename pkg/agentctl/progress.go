package agentctl

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows how a long operation goes: on a terminal one line
// rewritten in place, otherwise a plain line now and then, and nothing with
// -o json/yaml (their output must stay one parseable document). Nothing is
// shown for an operation shorter than showAfter.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	what  string // "import", "wait", ...
	total int
	start time.Time
	// showAfter, ttyEvery and plainEvery pace the output.
	showAfter, ttyEvery, plainEvery time.Duration
	last                            time.Time
	lastLine                        string // the counts last shown
	drawn                           bool   // a tty line is on screen
}

func (c *cli) newProgress(what string, total int) *progress {
	return &progress{
		w: c.out, tty: isTerminal(c.out), quiet: c.output != "table", what: what, total: total,
		start: time.Now(), showAfter: time.Second, ttyEvery: 100 * time.Millisecond, plainEvery: 2 * time.Second,
	}
}

// stateCount is one "N STATE" part of a progress line.
type stateCount struct {
	state string
	n     int
}

// update shows done of total with the counts by state, when it is time to.
func (p *progress) update(done int, counts []stateCount, now time.Time) {
	if p.quiet || now.Sub(p.start) < p.showAfter {
		return
	}
	every := p.plainEvery
	if p.tty {
		every = p.ttyEvery
	}
	if now.Sub(p.last) < every {
		return
	}
	line := p.line(done, counts, now)
	moved := fmt.Sprint(done, counts)
	if !p.tty && moved == p.lastLine {
		return // nothing moved: no new plain line
	}
	p.last, p.lastLine = now, moved
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) line(done int, counts []stateCount, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d/%d", p.what, done, p.total)
	var parts []string
	for _, c := range counts {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.state))
		}
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	el := now.Sub(p.start)
	if done > 0 && el > 0 {
		rate := float64(done) / el.Seconds()
		fmt.Fprintf(&b, ", %.0f/s", rate)
		if left := p.total - done; left > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", eta.Round(100*time.Millisecond))
		}
	}
	fmt.Fprintf(&b, ", %s elapsed", el.Round(100*time.Millisecond))
	return b.String()
}

// done clears the terminal line, so that the verb's own output follows on
// a clean line.
func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
