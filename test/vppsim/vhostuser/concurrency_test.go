package vhostuser

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBurstsRaceWithProtocol runs TxBurst and RxBurst in their own goroutines
// while frontends connect, stop and restart rings, remap memory and
// disconnect: under -race this checks the locking between the protocol and
// the data path, and every frame sent while the link is up must arrive.
func TestBurstsRaceWithProtocol(t *testing.T) {
	tp := openPort(t, Config{})
	var rxCount atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		frames := testFrames(4, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if tp.TxBurst(frames) == 0 {
				time.Sleep(100 * time.Microsecond) // do not spin on a shared machine
			}
		}
	}()
	go func() {
		defer wg.Done()
		bufs := makeBufs(16, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range bufs {
				bufs[i] = bufs[i][:0]
			}
			if n := tp.RxBurst(bufs); n > 0 {
				rxCount.Add(int64(n))
			} else {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	want := int64(0)
	for round := range 4 {
		f := connect(t, tp, feOpts{})
		for step := range 3 {
			f.postRx(8, 1, 2048)
			f.sendTx(testFrames(8, 64), 0, true)
			want += 8
			deadline := time.Now().Add(10 * time.Second)
			for rxCount.Load() < want {
				if time.Now().After(deadline) {
					t.Fatalf("round %d step %d: %d of %d frames from the guest", round, step, rxCount.Load(), want)
				}
				time.Sleep(time.Millisecond)
			}
			f.reapTx()
			f.discardRx()
			switch step {
			case 0: // remap the same memory while bursts run
				f.call(reqSetMemTable, f.memTablePayload(feRegion), f.memfd)
			case 1: // stop and restart both rings
				for q := range 2 {
					f.get(reqGetVringBase, state(uint32(q), 0))
				}
				tp.waitLink(t, false)
				for q := range 2 {
					f.setupRing(q, true)
				}
				tp.waitLink(t, true)
			}
		}
		f.c.Close()
		tp.waitLink(t, false)
	}
}
