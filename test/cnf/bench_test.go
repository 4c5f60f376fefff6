package cnf

import (
	"fmt"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// BenchmarkGenToSink measures the CNF pair in one process (generator on the slave, sink on
// the master), per frame; the pps metric is the sink's figure.
func BenchmarkGenToSink(b *testing.B) {
	for _, size := range []int{64, 1500} {
		for _, log2 := range []uint8{10, 14} {
			b.Run(fmt.Sprintf("%dB/ring%d", size, 1<<log2), func(b *testing.B) {
				master, slave := memifPair(b, memif.Config{ID: 1, Log2RingSize: log2})
				ctx := testCtx(b)
				count := uint64(max(b.N, 1))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				_, waitSink := runAsync(b, ctx, Options{Mode: ModeSink, Count: count}, master)
				_, waitGen := runAsync(b, ctx, Options{Mode: ModeGen, Count: count, Size: size, Linger: time.Millisecond}, slave)
				waitGen()
				s := waitSink()
				b.StopTimer()
				if s.Received != count || s.Lost != 0 {
					b.Fatalf("received %d lost %d of %d", s.Received, s.Lost, count)
				}
				b.ReportMetric(s.PPS, "pps")
			})
		}
	}
}
