package agent

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogRingKeepsTheLastLines(t *testing.T) {
	r := NewLogRing(3)
	if got := r.Last(10); len(got) != 0 {
		t.Fatalf("empty ring: %q", got)
	}
	log := slog.New(slog.NewJSONHandler(r, nil))
	for i := 1; i <= 5; i++ {
		log.Info("event", "n", i)
	}
	got := r.Last(10)
	if len(got) != 3 {
		t.Fatalf("kept %d lines", len(got))
	}
	for i, line := range got {
		var rec struct {
			Msg string
			N   int
		}
		if err := json.Unmarshal(line, &rec); err != nil || rec.Msg != "event" || rec.N != i+3 {
			t.Fatalf("line %d: %s (%v)", i, line, err)
		}
	}
	if last := r.Last(1); len(last) != 1 || !strings.Contains(string(last[0]), `"n":5`) {
		t.Fatalf("Last(1): %q", last)
	}
	// A huge line is cut, not kept whole.
	r.Write([]byte(strings.Repeat("x", maxLogLine+100) + "\n"))
	if l := r.Last(1)[0]; len(l) != maxLogLine {
		t.Fatalf("long line kept at %d bytes", len(l))
	}
}
