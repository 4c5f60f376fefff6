package memif

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRandomBurstsAgainstModel drives both directions with random bursts of random frame
// sizes (including chains) against a FIFO reference model: a full ring must refuse
// frames (never overwrite), rx must never return more than the caller's slice, and
// every frame must arrive once, in order, unchanged.
func TestRandomBurstsAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		p := newPair(t, Config{ID: 1}, Config{ID: 1, Log2RingSize: 4, BufferSize: 256})
		p.waitUp(t)
		dirs := []struct {
			name   string
			tx, rx *Queue
		}{
			{"s2m", p.slave.TxQueues()[0], p.master.RxQueues()[0]},
			{"m2s", p.master.TxQueues()[0], p.slave.RxQueues()[0]},
		}
		for _, d := range dirs {
			rng := rand.New(rand.NewPCG(seed, 42))
			var model [][]byte // frames sent but not yet received, in order
			slotsUsed := 0     // descriptors the model says are in the ring
			size := d.tx.RingSize()
			seq := 0
			rxBufs := makeBufs(20, 4096)
			for step := range 3000 {
				if rng.IntN(2) == 0 {
					burst := make([][]byte, rng.IntN(12))
					for i := range burst {
						burst[i] = frame(seq+i, rng.IntN(1100))
					}
					n, err := d.tx.TxBurst(burst)
					if err != nil {
						t.Fatalf("seed %d %s step %d: TxBurst: %v", seed, d.name, step, err)
					}
					// The model: frames are accepted in order while their descriptors fit.
					want := 0
					free := size - slotsUsed
					for _, f := range burst {
						need := max(1, (len(f)+255)/256)
						if need > free {
							break
						}
						free -= need
						want++
					}
					if n != want {
						t.Fatalf("seed %d %s step %d: TxBurst accepted %d of %d, model says %d (ring %d, used %d)",
							seed, d.name, step, n, len(burst), want, size, slotsUsed)
					}
					for _, f := range burst[:n] {
						slotsUsed += max(1, (len(f)+255)/256)
						model = append(model, f)
					}
					seq += len(burst)
				} else {
					k := rng.IntN(len(rxBufs) + 1)
					for i := range rxBufs {
						rxBufs[i] = rxBufs[i][:cap(rxBufs[i])]
					}
					n, err := d.rx.RxBurst(rxBufs[:k])
					if err != nil {
						t.Fatalf("seed %d %s step %d: RxBurst: %v", seed, d.name, step, err)
					}
					if n > k || n > len(model) || (n < k && n != len(model)) {
						t.Fatalf("seed %d %s step %d: RxBurst returned %d with slice %d and %d queued", seed, d.name, step, n, k, len(model))
					}
					for i := 0; i < n; i++ {
						if !bytes.Equal(rxBufs[i], model[i]) {
							t.Fatalf("seed %d %s step %d: frame %d differs (%d vs %d bytes)", seed, d.name, step, i, len(rxBufs[i]), len(model[i]))
						}
						slotsUsed -= max(1, (len(model[i])+255)/256)
					}
					model = model[n:]
				}
			}
		}
	}
}
