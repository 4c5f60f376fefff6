package agentctl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	counts := []stateCount{{"CONFIGURED", 40}, {"PENDING", 60}, {"FAILED", 0}}
	mk := func(tty, quiet bool) (*progress, *bytes.Buffer) {
		var b bytes.Buffer
		return &progress{w: &b, tty: tty, quiet: quiet, what: "wait", total: 100, start: t0,
			showAfter: time.Second, ttyEvery: 100 * time.Millisecond, plainEvery: 2 * time.Second}, &b
	}
	// Terminal: nothing in the first second, then one line redrawn in place.
	p, b := mk(true, false)
	p.update(10, counts, t0.Add(500*time.Millisecond))
	if b.Len() != 0 {
		t.Fatalf("shown before a second: %q", b.String())
	}
	p.update(40, counts, t0.Add(2*time.Second))
	if got := b.String(); got != "\r\x1b[Kwait: 40/100 (40 CONFIGURED, 60 PENDING), 20/s, ETA 3s, 2s elapsed" {
		t.Fatalf("tty line %q", got)
	}
	p.update(41, counts, t0.Add(2050*time.Millisecond)) // too soon: no redraw
	if strings.Count(b.String(), "\r") != 1 {
		t.Fatalf("redrawn too soon: %q", b.String())
	}
	p.done()
	if !strings.HasSuffix(b.String(), "\r\x1b[K") {
		t.Fatalf("line not cleared: %q", b.String())
	}
	// Not a terminal: plain lines, every 2 s, none repeated.
	p, b = mk(false, false)
	p.update(40, counts, t0.Add(1500*time.Millisecond))
	p.update(40, counts, t0.Add(4*time.Second)) // nothing moved
	p.update(80, counts, t0.Add(4*time.Second))
	p.done()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if strings.Contains(b.String(), "\r") || len(lines) != 2 || !strings.HasPrefix(lines[1], "wait: 80/100") {
		t.Fatalf("plain lines %q", b.String())
	}
	// -o json/yaml: nothing.
	p, b = mk(true, true)
	p.update(40, counts, t0.Add(3*time.Second))
	p.done()
	if b.Len() != 0 {
		t.Fatalf("quiet progress wrote %q", b.String())
	}
}
