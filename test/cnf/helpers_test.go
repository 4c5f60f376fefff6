package cnf

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// memifPair builds a master and a slave memif with the library directly, over a socket in
// a temp dir, both administratively up. The test decides which side the CNF drives.
func memifPair(t testing.TB, cfg memif.Config) (master, slave *memif.Interface) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "memif.sock")
	s, err := memif.Listen(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet()
	cfg.RetryInterval = 20 * time.Millisecond
	if master, err = memif.NewMaster(s, cfg); err != nil {
		t.Fatal(err)
	}
	if slave, err = memif.NewSlave(path, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = slave.Close()
		_ = master.Close()
		_ = s.Close()
	})
	if err := master.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := slave.Connect(); err != nil {
		t.Fatal(err)
	}
	return master, slave
}

func waitUp(t testing.TB, ifs ...*memif.Interface) {
	t.Helper()
	for _, i := range ifs {
		if err := i.WaitUp(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// runAsync runs a Runner in the background; the returned func waits for its result.
func runAsync(t testing.TB, ctx context.Context, opts Options, iface *memif.Interface) (*Runner, func() Summary) {
	t.Helper()
	opts.Logger = quiet()
	r, err := NewRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		s   Summary
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := r.Run(ctx, iface)
		ch <- result{s, err}
	}()
	return r, func() Summary {
		t.Helper()
		res := <-ch
		if res.err != nil {
			t.Fatalf("%s: Run: %v", opts.Mode, res.err)
		}
		return res.s
	}
}

// craft returns a CNF frame with the given stream and sequence number.
func craft(t testing.TB, ipMode bool, size int, stream uint32, seq uint64) []byte {
	t.Helper()
	f, err := buildTemplate(size, ipMode, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, stream)
	if err != nil {
		t.Fatal(err)
	}
	stampSeq(f, ipMode, seq)
	return f
}

// sendAllFrames pushes frames through a library queue, waiting out a full ring.
func sendAllFrames(t testing.TB, q *memif.Queue, frames [][]byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(frames) > 0 {
		n, err := q.TxBurst(frames)
		if err != nil {
			t.Fatalf("TxBurst: %v", err)
		}
		frames = frames[n:]
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("ring stayed full, %d frames unsent", len(frames))
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}
