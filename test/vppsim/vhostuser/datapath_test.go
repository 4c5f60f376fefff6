package vhostuser

import (
	"testing"
)

// TestBurstsDoNotAllocate checks the steady-state packet path in both
// directions allocates nothing (the frontend side of the loop does not either).
func TestBurstsDoNotAllocate(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	frames := testFrames(16, 60)
	bufs := makeBufs(16, 2048)
	var txOK, rxOK bool
	round := func() {
		f.postRx(16, 1, 2048)
		txOK = tp.TxBurst(frames) == 16 && f.discardRx() == 16
		f.sendTx(frames, 0, false)
		for i := range bufs {
			bufs[i] = bufs[i][:0]
		}
		rxOK = tp.RxBurst(bufs) == 16 && f.reapTx() == 16
	}
	round() // warm up
	allocs := testing.AllocsPerRun(50, round)
	if !txOK || !rxOK {
		t.Fatalf("bursts incomplete: tx %v rx %v", txOK, rxOK)
	}
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round of 16+16 frames, want 0", allocs)
	}
}

// BenchmarkBurstRoundTrip moves 32 frames to the guest and 32 frames from it
// per op through the in-process frontend, which polls like testpmd (no
// interrupts, no TX kicks); frame size is 64 or 1500 bytes.
func BenchmarkBurstRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(map[int]string{64: "64B", 1500: "1500B"}[size], func(b *testing.B) {
			tp := openPort(b, Config{})
			f := connect(b, tp, feOpts{})
			f.setNoInterrupt(0, true)
			f.setNoInterrupt(1, true)
			frames := make([][]byte, 32)
			for i := range frames {
				frames[i] = make([]byte, size)
			}
			bufs := makeBufs(32, 2048)
			b.SetBytes(int64(2 * 32 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				f.postRx(32, 1, 2048)
				if tp.TxBurst(frames) != 32 {
					b.Fatal("TxBurst short")
				}
				f.discardRx()
				f.sendTx(frames, 0, false)
				for i := range bufs {
					bufs[i] = bufs[i][:0]
				}
				if tp.RxBurst(bufs) != 32 {
					b.Fatal("RxBurst short")
				}
				f.reapTx()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
		})
	}
}
