package memif

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoGoroutinesLeftBehind connects, moves frames, cycles the link and closes
// everything; the goroutine count must return to where it started.
func TestNoGoroutinesLeftBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		p := newPair(t, Config{ID: 1}, Config{ID: 1})
		p.waitUp(t)
		transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], [][]byte{frame(1, 100)})
		p.slave.Disconnect()
		p.slave.Connect()
		p.waitUp(t)
		rx := p.slave.RxQueues()[0]
		waitErr := make(chan error, 1)
		go func() { waitErr <- rx.Wait(context.Background()) }() // blocked in the poller
		p.slave.Close()
		p.master.Close()
		p.sock.Close()
		if err := <-waitErr; err != ErrDisconnected {
			t.Fatalf("Wait on a closed interface = %v, want ErrDisconnected", err)
		}
	}()
	// Exited goroutines may take a moment to leave the runtime's count; poll until it
	// settles (a generous bound, not a timing assertion).
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestAbstractSocket(t *testing.T) {
	path := fmt.Sprintf("@vppmesh-memif-test-%d", os.Getpid())
	s, err := Listen(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ := NewMaster(s, Config{ID: 4, Logger: quietLogger()})
	defer m.Close()
	sl, _ := NewSlave(path, Config{ID: 4, Logger: quietLogger(), RetryInterval: 10 * time.Millisecond})
	defer sl.Close()
	m.Connect()
	sl.Connect()
	for _, i := range []*Interface{m, sl} {
		if err := i.WaitUp(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	transfer(t, m.TxQueues()[0], sl.RxQueues()[0], [][]byte{frame(1, 60)})
}

// attemptCounter counts a slave's failed connection attempts from its log.
type attemptCounter struct{ n atomic.Int64 }

func (a *attemptCounter) Enabled(context.Context, slog.Level) bool { return true }
func (a *attemptCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "memif connect attempt failed" {
		a.n.Add(1)
	}
	return nil
}
func (a *attemptCounter) WithAttrs([]slog.Attr) slog.Handler { return a }
func (a *attemptCounter) WithGroup(string) slog.Handler      { return a }

// With RetryMax a slave waiting for an absent master backs off (5, 10, 20,
// 40, 40… ms: about a dozen attempts in 400 ms, not 80) and still connects
// once the master is there.
func TestSlaveRetryBacksOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.sock")
	var count attemptCounter
	sl, err := NewSlave(path, Config{ID: 1, RetryInterval: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond, Logger: slog.New(&count)})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Connect(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if n := count.n.Load(); n < 3 || n > 20 {
		t.Fatalf("%d attempts in 400 ms with a 5 ms → 40 ms backoff, want 3..20", n)
	}
	s, err := Listen(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ := NewMaster(s, Config{ID: 1, Logger: quietLogger()})
	defer m.Close()
	if err := m.Connect(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []*Interface{m, sl} {
		if err := i.WaitUp(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNextPause(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ cur, base, limit, want time.Duration }{
		{5 * ms, 5 * ms, 40 * ms, 10 * ms},
		{20 * ms, 5 * ms, 40 * ms, 40 * ms},
		{40 * ms, 5 * ms, 40 * ms, 40 * ms},
		{5 * ms, 5 * ms, 0, 5 * ms},         // no RetryMax: a fixed pace
		{5 * ms, 50 * ms, 10 * ms, 50 * ms}, // RetryMax below RetryInterval: ignored
	} {
		if got := nextPause(c.cur, c.base, c.limit); got != c.want {
			t.Errorf("nextPause(%v, %v, %v) = %v, want %v", c.cur, c.base, c.limit, got, c.want)
		}
	}
}
