package vppsim

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	vppmemif "go.fd.io/govpp/binapi/memif"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// BenchmarkMemifXconnect measures frames per second from one Go memif CNF through a
// vppsim memif cross-connect to another, with the ring sizes of issue 4's comparison.
// The sender keeps at most half a ring in flight, so nothing is dropped and the figure
// is the sustainable rate of the whole chain (CNF tx, vppsim rx+forward+tx, CNF rx).
func BenchmarkMemifXconnect(b *testing.B) {
	for _, log2 := range []uint8{10, 14} {
		for _, size := range []int{64, 1500} {
			b.Run(fmt.Sprintf("ring%d/%dB", 1<<log2, size), func(b *testing.B) {
				benchXconnect(b, log2, size)
			})
		}
	}
}

func benchXconnect(b *testing.B, log2 uint8, size int) {
	e := startPacketSim(b)
	cfg := memif.Config{Log2RingSize: log2}
	p := newXCPair(b, e, vppmemif.MEMIF_MODE_API_ETHERNET, cfg, cfg)
	burst := frames(macB, macA, 64, size)
	rxq := p.cb.ifc.RxQueues()[0]
	txq := p.ca.ifc.TxQueues()[0]
	window := int64(1) << log2 / 2
	var received atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs, backing := make([][]byte, 256), make([][]byte, 256)
		for i := range backing {
			backing[i] = make([]byte, 2048)
		}
		for received.Load() < int64(b.N) {
			copy(bufs, backing)
			k, err := rxq.RxBurst(bufs)
			if err != nil {
				return
			}
			received.Add(int64(k))
			if k == 0 && rxq.PollWait(ctx, 64) != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	stall := time.Now()
	for sent := 0; sent < b.N; {
		if int64(sent)-received.Load() >= window {
			if time.Since(stall) > 5*time.Second {
				b.Fatalf("no progress: sent %d received %d drops %v", sent, received.Load(), e.port(p.b).Drops())
			}
			runtime.Gosched()
			continue
		}
		n, err := txq.TxBurst(burst[:min(len(burst), b.N-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
		stall = time.Now()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.Fatalf("received %d of %d; drops %v", received.Load(), b.N, e.port(p.b).Drops())
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pps")
}
