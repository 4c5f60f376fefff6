package cnf

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuf is a bytes.Buffer safe for the reporter and the test to share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServe runs two whole CNFs in-process (generator as master, sink as slave) with the
// progress line, a stats file and a queued dump, then one stopped before any link.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sub", "memif.sock") // the master creates the directory
	stats := filepath.Join(dir, "stats.json")
	parse := func(args string) Config {
		cfg, err := ParseArgs(strings.Fields(args), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = quiet()
		return cfg
	}
	gen := parse("gen --role master --socket " + sock + " --count 30000 --progress --progress-interval 1ms --linger 1ms")
	sink := parse("sink --socket " + sock + " --retry 10ms --count 30000 --stats-file " + stats + " --stats-interval 1ms")
	ctx := testCtx(t)
	dump := make(chan struct{}, 1)
	dump <- struct{}{}
	var genOut, genErr, sinkOut, sinkErr syncBuf
	var wg sync.WaitGroup
	var genRes, sinkRes error
	wg.Add(2)
	go func() { defer wg.Done(); genRes = Serve(ctx, gen, nil, &genOut, &genErr) }()
	go func() { defer wg.Done(); sinkRes = Serve(ctx, sink, dump, &sinkOut, &sinkErr) }()
	wg.Wait()
	if genRes != nil || sinkRes != nil {
		t.Fatalf("gen: %v, sink: %v", genRes, sinkRes)
	}
	var g, s, f Summary
	for _, x := range []struct {
		b   []byte
		dst *Summary
	}{{[]byte(genOut.String()), &g}, {[]byte(sinkOut.String()), &s}} {
		if err := json.Unmarshal(x.b, x.dst); err != nil {
			t.Fatalf("summary %q: %v", x.b, err)
		}
	}
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if g.Sent != 30000 || s.Received != 30000 || f.Received != 30000 || s.Lost != 0 {
		t.Fatalf("gen %+v\nsink %+v\nstats file %+v", g, s, f)
	}
	if !strings.Contains(genErr.String(), "gen: sent=30000 ") {
		t.Fatalf("final progress line missing: %q", genErr.String())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var out syncBuf
	if err := Serve(cancelled, parse("sink --socket "+filepath.Join(dir, "none.sock")), nil, &out, &out); err != nil {
		t.Fatalf("Serve stopped before any link: %v", err)
	}
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil || s.Received != 0 {
		t.Fatalf("summary after an early stop %q: %v", out.String(), err)
	}
}
