package memif

import (
	"fmt"
	"testing"
)

// TestZeroAllocsPerPacket checks that a steady-state burst round trip allocates nothing,
// in both directions (a count, not a time).
func TestZeroAllocsPerPacket(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1, Log2RingSize: 8})
	p.waitUp(t)
	pkts := make([][]byte, 32)
	for i := range pkts {
		pkts[i] = frame(i, 64+i*100) // includes chained frames (> 2048 bytes)
	}
	bufs := makeBufs(32, 4096)
	for _, d := range []struct {
		name   string
		tx, rx *Queue
	}{{"s2m", p.slave.TxQueues()[0], p.master.RxQueues()[0]}, {"m2s", p.master.TxQueues()[0], p.slave.RxQueues()[0]}} {
		allocs := testing.AllocsPerRun(200, func() {
			n, err := d.tx.TxBurst(pkts)
			if err != nil || n != len(pkts) {
				t.Fatalf("TxBurst = %d, %v", n, err)
			}
			for i := range bufs {
				bufs[i] = bufs[i][:cap(bufs[i])]
			}
			if n, err := d.rx.RxBurst(bufs); err != nil || n != len(pkts) {
				t.Fatalf("RxBurst = %d, %v", n, err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%s: %v allocations per 32-frame round trip, want 0", d.name, allocs)
		}
	}
}

// BenchmarkRoundTrip measures the in-process master<->slave path: one burst of 32
// frames transmitted and received per iteration, reported per frame.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1500} {
		for _, log2 := range []uint8{8, 10, 12} {
			for _, dir := range []string{"s2m", "m2s"} {
				b.Run(fmt.Sprintf("%s/%dB/ring%d", dir, size, 1<<log2), func(b *testing.B) {
					p := newPair(b, Config{ID: 1}, Config{ID: 1, Log2RingSize: log2})
					p.waitUp(b)
					tx, rx := p.slave.TxQueues()[0], p.master.RxQueues()[0]
					if dir == "m2s" {
						tx, rx = p.master.TxQueues()[0], p.slave.RxQueues()[0]
					}
					pkts := make([][]byte, 32)
					for i := range pkts {
						pkts[i] = frame(i, size)
					}
					bufs := makeBufs(32, 2048)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					for sent := 0; sent < b.N; {
						n, _ := tx.TxBurst(pkts[:min(32, b.N-sent)])
						sent += n
						for i := range bufs {
							bufs[i] = bufs[i][:cap(bufs[i])]
						}
						rx.RxBurst(bufs)
					}
				})
			}
		}
	}
}
