package cnf

import (
	"context"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// TestGenToSink runs the generator on one side of a memif pair and the sink on the other,
// in both role assignments and across modes, sizes (chained buffers), queue counts and a
// ring small enough that back-pressure is certain: every frame sent arrives, in order.
func TestGenToSink(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       memif.Config
		size      int
		genMaster bool
		ip        bool
		rate      float64
	}{
		{name: "slave-gen", cfg: memif.Config{ID: 1}, size: 64},
		{name: "master-gen", cfg: memif.Config{ID: 2}, size: 64, genMaster: true},
		{name: "ip-mode", cfg: memif.Config{ID: 3, Mode: memif.ModeIP}, size: 100, ip: true},
		{name: "jumbo-chained", cfg: memif.Config{ID: 4, BufferSize: 1024}, size: 9000},
		{name: "two-queues", cfg: memif.Config{ID: 5, NumS2M: 2, NumM2S: 2}, size: 1500, genMaster: true},
		{name: "tiny-ring", cfg: memif.Config{ID: 6, Log2RingSize: 3}, size: 256},
		{name: "rate-limited", cfg: memif.Config{ID: 7}, size: 64, rate: 200000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count = 20000
			master, slave := memifPair(t, tc.cfg)
			genIf, sinkIf := slave, master
			if tc.genMaster {
				genIf, sinkIf = master, slave
			}
			ctx := testCtx(t)
			_, waitSink := runAsync(t, ctx, Options{Mode: ModeSink, Count: count, IPMode: tc.ip}, sinkIf)
			_, waitGen := runAsync(t, ctx, Options{Mode: ModeGen, Count: count, Size: tc.size, IPMode: tc.ip, Rate: tc.rate, Stream: 10, Linger: time.Millisecond}, genIf)
			gen, sink := waitGen(), waitSink()
			if gen.Sent != count || sink.Received != count {
				t.Fatalf("sent %d received %d, want %d", gen.Sent, sink.Received, count)
			}
			if sink.Lost != 0 || sink.Reordered != 0 || sink.Duplicates != 0 || sink.Foreign != 0 {
				t.Fatalf("sink verdict %+v, want clean", sink)
			}
			if gen.Bytes != count*uint64(tc.size) || sink.Bytes != gen.Bytes {
				t.Fatalf("bytes gen %d sink %d, want %d", gen.Bytes, sink.Bytes, count*tc.size)
			}
			wantStreams := max(tc.cfg.NumS2M, 1)
			if sink.Streams != wantStreams {
				t.Fatalf("streams %d, want %d (one per queue)", sink.Streams, wantStreams)
			}
		})
	}
}

// TestSinkDetectsInjected feeds crafted frames through a library queue: gaps, a late
// frame, repeats, another stream and non-CNF frames must be told apart.
func TestSinkDetectsInjected(t *testing.T) {
	master, slave := memifPair(t, memif.Config{ID: 1})
	ctx := testCtx(t)
	var frames [][]byte
	add := func(stream uint32, seqs ...uint64) {
		for _, s := range seqs {
			frames = append(frames, craft(t, false, 64, stream, s))
		}
	}
	add(1, 0, 1, 2, 5, 3, 3, 6, 9) // lost 4,7,8; 3 reordered; 3 duplicated
	add(2, 2, 3, 3, 1)             // lost 0; 1 reordered; 3 duplicated
	frames = append(frames, []byte("not a cnf frame at all, just bytes............................."))
	_, wait := runAsync(t, ctx, Options{Mode: ModeSink, Count: uint64(len(frames))}, slave)
	waitUp(t, master)
	sendAllFrames(t, master.TxQueues()[0], frames)
	s := wait()
	want := Summary{Received: uint64(len(frames)), Lost: 4, Reordered: 2, Duplicates: 2, Foreign: 1, Streams: 2}
	if s.Received != want.Received || s.Lost != want.Lost || s.Reordered != want.Reordered ||
		s.Duplicates != want.Duplicates || s.Foreign != want.Foreign || s.Streams != want.Streams {
		t.Fatalf("got %+v\nwant received/lost/reordered/dup/foreign/streams %d/%d/%d/%d/%d/%d", s,
			want.Received, want.Lost, want.Reordered, want.Duplicates, want.Foreign, want.Streams)
	}
}

// TestReflect sends frames from the library master to a reflecting CNF and reads them
// back: same count, same order, MAC addresses swapped.
func TestReflect(t *testing.T) {
	master, slave := memifPair(t, memif.Config{ID: 1, Log2RingSize: 6})
	ctx := testCtx(t)
	const count = 5000
	_, wait := runAsync(t, ctx, Options{Mode: ModeReflect, Count: count, SwapMACs: true}, slave)
	waitUp(t, master)
	tx, rx := master.TxQueues()[0], master.RxQueues()[0]
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	var sent, got uint64
	for got < count {
		for sent < count && sent-got < 32 { // keep a window in flight so both rings cycle
			n, err := tx.TxBurst([][]byte{craft(t, false, 128, 3, sent)})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			sent++
		}
		n, err := rx.RxBurst(bufs)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range bufs[:n] {
			stream, seq, ok := parseFrame(f, false)
			if !ok || stream != 3 || seq != got {
				t.Fatalf("reflected frame %d: stream %d seq %d ok %v", got, stream, seq, ok)
			}
			if f[5] != 1 || f[11] != 2 {
				t.Fatalf("reflected frame %d: MACs not swapped", got)
			}
			got++
		}
		switch {
		case n > 0:
		case sent > got: // frames in flight: sleep until the reflector sends one back
			if err := rx.PollWait(ctx, 16); err != nil {
				t.Fatal(err)
			}
		default: // the slave has not offered its receive buffers yet: nothing will come back
			time.Sleep(100 * time.Microsecond)
		}
	}
	s := wait()
	if s.Received != count || s.Sent != count || s.Lost != 0 || s.Reordered != 0 {
		t.Fatalf("reflector summary %+v, want %d received and sent, clean", s, count)
	}
}

// TestGenSurvivesLinkFlap takes the link down mid-stream and back up: the generator
// resumes on the new queues without reusing a sequence number, so the sink may see loss
// (frames in the torn-down ring) but never a duplicate, and every frame is counted once.
func TestGenSurvivesLinkFlap(t *testing.T) {
	master, slave := memifPair(t, memif.Config{ID: 1})
	ctx := testCtx(t)
	const count = 200000
	gen, waitGen := runAsync(t, ctx, Options{Mode: ModeGen, Count: count, Rate: 400000}, slave)
	sinkCtx, stopSink := context.WithCancel(ctx)
	sink, waitSink := runAsync(t, sinkCtx, Options{Mode: ModeSink}, master)
	waitUp(t, master)
	for gen.Snapshot().Sent < count/10 {
		if !sleepCtx(ctx, newStoppedTimer(), 1e6) {
			t.Fatal("no traffic")
		}
	}
	if err := master.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := master.Connect(); err != nil {
		t.Fatal(err)
	}
	g := waitGen()
	for sink.Snapshot().Received+sink.Snapshot().Lost < count {
		if !sleepCtx(ctx, newStoppedTimer(), 1e6) {
			t.Fatalf("sink stuck at %+v", sink.Snapshot())
		}
	}
	stopSink()
	s := waitSink()
	if g.Sent != count || g.LinkUps < 2 || s.LinkUps < 2 {
		t.Fatalf("gen %+v sink %+v: want %d sent over two connections", g, s, count)
	}
	if s.Duplicates != 0 || s.Reordered != 0 || s.Received+s.Lost != count {
		t.Fatalf("sink %+v: want no duplicates or reordering and received+lost = %d", s, count)
	}
	t.Logf("flap: sent %d received %d lost in the torn-down ring %d", g.Sent, s.Received, s.Lost)
}

func TestOptionsValidation(t *testing.T) {
	for i, o := range []Options{
		{Mode: "bogus"},
		{Mode: ModeGen, Size: 63},
		{Mode: ModeGen, Size: 9001},
		{Mode: ModeGen, Rate: -1},
		{Mode: ModeSink, Batch: 5000},
		{Mode: ModeSink, MaxFrame: 10},
	} {
		if _, err := NewRunner(o); err == nil {
			t.Errorf("case %d (%+v): accepted", i, o)
		}
	}
	r, err := NewRunner(Options{Mode: ModeGen, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	master, _ := memifPair(t, memif.Config{ID: 9})
	if _, err := r.Run(ctx, master); err != nil {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if _, err := r.Run(ctx, master); err == nil {
		t.Fatal("second Run accepted")
	}
}
