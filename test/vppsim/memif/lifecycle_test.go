package memif

import (
	"context"
	"fmt"
	"os"
	"runtime"
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
