package vhostuser

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testPort struct {
	*Port
	link chan bool
}

func openPort(t testing.TB, cfg Config) *testPort {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(t.TempDir(), "vhost.sock")
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	tp := &testPort{link: make(chan bool, 64)}
	cfg.OnLink = func(up bool) { tp.link <- up }
	p, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tp.Port = p
	t.Cleanup(func() { p.Close() })
	return tp
}

// waitLink waits for the next link event and checks it; the deadline only
// bounds a hang, it does not measure anything.
func (tp *testPort) waitLink(t testing.TB, want bool) {
	t.Helper()
	select {
	case up := <-tp.link:
		if up != want {
			t.Fatalf("link event up=%v, want %v", up, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no link event (want up=%v)", want)
	}
}

func testFrames(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		f := make([]byte, size+i)
		for j := range f {
			f[j] = byte(i*7 + j)
		}
		out[i] = f
	}
	return out
}

func makeBufs(n, size int) [][]byte {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, 0, size)
	}
	return b
}

// rxAll drains frames from the guest, blocking on RxReady between bursts.
func rxAll(t testing.TB, p *Port, want int) [][]byte {
	t.Helper()
	var got [][]byte
	deadline := time.After(10 * time.Second)
	for len(got) < want {
		bufs := makeBufs(32, 2048)
		n := p.RxBurst(bufs)
		for _, b := range bufs[:n] {
			got = append(got, append([]byte(nil), b...))
		}
		if n == 0 {
			select {
			case <-p.RxReady():
			case <-time.After(50 * time.Millisecond):
				// RxReady is a hint; poll again in case a kick was suppressed.
			case <-deadline:
				t.Fatalf("received %d of %d frames", len(got), want)
			}
		}
	}
	return got
}

func connect(t testing.TB, tp *testPort, o feOpts) *frontend {
	t.Helper()
	f := newFrontend(t)
	f.dial(tp.cfg.SocketPath)
	f.handshake(o)
	if !o.skipRings && !o.noEnable {
		tp.waitLink(t, true)
	}
	return f
}

func TestBothDirectionsServerMode(t *testing.T) {
	tp := openPort(t, Config{Name: "vhost0"})
	f := connect(t, tp, feOpts{})
	if !tp.LinkUp() {
		t.Fatal("LinkUp false after link event")
	}

	// Guest → backend, with the frame scattered over 3 descriptors after the header.
	frames := testFrames(20, 100)
	f.sendTx(frames, 40, true)
	got := rxAll(t, tp.Port, len(frames))
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d from guest: got %d bytes % x, want % x", i, len(got[i]), got[i][:8], frames[i][:8])
		}
	}
	if n := f.reapTx(); n != len(frames) {
		t.Fatalf("backend returned %d TX chains, want %d", n, len(frames))
	}
	if c := eventCount(f.rings[1].call); c == 0 {
		t.Fatal("no call eventfd signal after TX completion")
	}

	// Backend → guest.
	f.postRx(30, 1, 2048)
	out := testFrames(25, 60)
	if n := tp.TxBurst(out); n != len(out) {
		t.Fatalf("TxBurst = %d, want %d", n, len(out))
	}
	rx, nb := f.recvRx()
	if len(rx) != len(out) {
		t.Fatalf("guest received %d frames, want %d", len(rx), len(out))
	}
	for i := range out {
		if !bytes.Equal(rx[i], out[i]) || nb[i] != 1 {
			t.Fatalf("frame %d to guest: %d bytes, num_buffers %d", i, len(rx[i]), nb[i])
		}
	}
	if c := eventCount(f.rings[0].call); c == 0 {
		t.Fatal("no call eventfd signal after RX delivery")
	}
	// 5 buffers left: a burst of 8 queues exactly 5.
	if n := tp.TxBurst(testFrames(8, 60)); n != 5 {
		t.Fatalf("TxBurst with 5 free buffers = %d", n)
	}
	// NO_INTERRUPT suppresses the call.
	f.recvRx()
	eventCount(f.rings[0].call)
	f.setNoInterrupt(0, true)
	f.postRx(1, 1, 2048)
	if n := tp.TxBurst(out[:1]); n != 1 {
		t.Fatalf("TxBurst = %d", n)
	}
	if c := eventCount(f.rings[0].call); c != 0 {
		t.Fatalf("call signalled %d times despite VRING_AVAIL_F_NO_INTERRUPT", c)
	}
	st := tp.Stats()
	if st.RxPackets != 20 || st.TxPackets != 31 || st.Connects != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMergeableRxBuffers(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	if f.features&(1<<featMrgRxbuf) == 0 {
		t.Fatal("MRG_RXBUF not offered")
	}
	f.postRx(20, 1, 256)
	frame := testFrames(1, 1000)[0] // 12+1000 bytes over 256-byte buffers: 4 buffers
	if n := tp.TxBurst([][]byte{frame, frame}); n != 2 {
		t.Fatalf("TxBurst = %d", n)
	}
	rx, nb := f.recvRx()
	if len(rx) != 2 || nb[0] != 4 || nb[1] != 4 || !bytes.Equal(rx[0], frame) || !bytes.Equal(rx[1], frame) {
		t.Fatalf("got %d frames, num_buffers %v", len(rx), nb)
	}
	// 12 buffers left need 4 each: the fourth frame does not fit and is not queued,
	// and nothing of it may be published.
	if n := tp.TxBurst([][]byte{frame, frame, frame, frame}); n != 3 {
		t.Fatalf("TxBurst with 12 buffers for 4-buffer frames = %d, want 3", n)
	}
	before := f.usedIdx(0)
	f.recvRx()
	f.postRx(4, 1, 256)
	if n := tp.TxBurst([][]byte{frame}); n != 1 {
		t.Fatalf("TxBurst after refill = %d", n)
	}
	if got := f.usedIdx(0) - before; got != 4 {
		t.Fatalf("used advanced by %d, want 4", got)
	}
	rx, nb = f.recvRx()
	if len(rx) != 1 || nb[0] != 4 || !bytes.Equal(rx[0], frame) {
		t.Fatalf("after refill: %d frames, num_buffers %v", len(rx), nb)
	}
}

func TestChainedRxWithoutMergeable(t *testing.T) {
	tp := openPort(t, Config{DisableMrgRxbuf: true})
	f := connect(t, tp, feOpts{})
	if f.features&(1<<featMrgRxbuf) != 0 {
		t.Fatal("MRG_RXBUF offered although disabled")
	}
	f.postRx(2, 4, 512) // chains of 4×512 bytes
	frame := testFrames(1, 1500)[0]
	if n := tp.TxBurst([][]byte{frame}); n != 1 {
		t.Fatalf("TxBurst = %d", n)
	}
	rx, nb := f.recvRx()
	if len(rx) != 1 || nb[0] != 1 || !bytes.Equal(rx[0], frame) {
		t.Fatalf("got %d frames, num_buffers %v", len(rx), nb)
	}
}

func TestLegacyHeaderWithoutProtocolFeatures(t *testing.T) {
	tp := openPort(t, Config{})
	f := newFrontend(t)
	f.dial(tp.cfg.SocketPath)
	// No VERSION_1, no MRG_RXBUF: the 10-byte header; no protocol features:
	// rings are enabled by their kick.
	f.handshake(feOpts{features: 1 << featProtocolFeatures, noProto: true})
	tp.waitLink(t, true)
	if f.hdrLen != 10 {
		t.Fatalf("header %d", f.hdrLen)
	}
	frames := testFrames(3, 64)
	f.sendTx(frames, 0, true)
	got := rxAll(t, tp.Port, 3)
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	f.postRx(3, 1, 2048)
	if n := tp.TxBurst(frames); n != 3 {
		t.Fatalf("TxBurst = %d", n)
	}
	rx, _ := f.recvRx()
	if len(rx) != 3 || !bytes.Equal(rx[2], frames[2]) {
		t.Fatalf("guest got %d frames", len(rx))
	}
}

func TestRxTruncatedAndKickSuppression(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	big := testFrames(1, 1800)
	f.sendTx(big, 0, true)
	small := makeBufs(4, 100)
	if n := tp.RxBurst(small); n != 0 {
		t.Fatalf("RxBurst into 100-byte buffers = %d", n)
	}
	if tp.Stats().RxTruncated != 1 || f.reapTx() != 1 {
		t.Fatalf("oversize frame not dropped and returned: %+v", tp.Stats())
	}
	// A busy burst suppresses kicks, an empty one re-enables them.
	f.sendTx(testFrames(2, 64), 0, true)
	if n := tp.RxBurst(makeBufs(4, 2048)); n != 2 {
		t.Fatalf("RxBurst = %d", n)
	}
	if f.usedFlags(1)&usedFNoNotify == 0 {
		t.Fatal("kicks not suppressed while busy")
	}
	if n := tp.RxBurst(makeBufs(4, 2048)); n != 0 {
		t.Fatalf("RxBurst on empty ring = %d", n)
	}
	if f.usedFlags(1)&usedFNoNotify != 0 {
		t.Fatal("kicks still suppressed while idle")
	}
}

func TestReconnectAndRenegotiate(t *testing.T) {
	tp := openPort(t, Config{})
	for round := range 3 {
		f := connect(t, tp, feOpts{})
		f.sendTx(testFrames(4, 80+round), 0, true)
		if got := rxAll(t, tp.Port, 4); len(got[3]) != 83+round {
			t.Fatalf("round %d: frame length %d", round, len(got[3]))
		}
		// A stop/restart of the rings within one connection, as at testpmd port stop/start.
		for q := range 2 {
			b := f.get(reqGetVringBase, state(uint32(q), 0))
			if q == 1 && b[4] != 4 {
				t.Fatalf("GET_VRING_BASE vring 1 = % x, want base 4", b)
			}
		}
		tp.waitLink(t, false)
		for q := range 2 {
			f.setupRing(q, true)
		}
		tp.waitLink(t, true)
		f.postRx(2, 1, 2048)
		if n := tp.TxBurst(testFrames(2, 50)); n != 2 {
			t.Fatalf("round %d: TxBurst after ring restart = %d", round, n)
		}
		f.c.Close()
		tp.waitLink(t, false)
	}
	if c := tp.Stats().Connects; c != 3 {
		t.Fatalf("connects = %d", c)
	}
}

func TestClientModeReconnects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fe.sock")
	ln, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tp := openPort(t, Config{SocketPath: sock, Client: true, ReconnectInterval: 20 * time.Millisecond})
	for round := range 2 {
		c, err := ln.AcceptUnix()
		if err != nil {
			t.Fatal(err)
		}
		f := newFrontend(t)
		f.c = c
		f.handshake(feOpts{})
		tp.waitLink(t, true)
		f.sendTx(testFrames(5, 70), 0, true)
		if got := rxAll(t, tp.Port, 5); len(got) != 5 {
			t.Fatalf("round %d: %d frames", round, len(got))
		}
		c.Close()
		tp.waitLink(t, false)
	}
}

func TestNewFrontendReplacesOld(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	g := newFrontend(t)
	g.dial(tp.cfg.SocketPath)
	f.waitClosed()
	tp.waitLink(t, false)
	g.handshake(feOpts{})
	tp.waitLink(t, true)
	g.sendTx(testFrames(1, 64), 0, true)
	if got := rxAll(t, tp.Port, 1); len(got) != 1 {
		t.Fatal("new frontend not served")
	}
}

func TestSetLogRefusedWithoutDrop(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	if err := f.rawSend(reqSetLogBase, flagVersion|flagNeedReply, make([]byte, 16), f.rings[0].call); err != nil {
		t.Fatal(err)
	}
	if r := f.recvReply(reqSetLogBase); len(r) != 8 || r[0] == 0 {
		t.Fatalf("SET_LOG_BASE ack % x, want failure", r)
	}
	if got := f.get(reqGetFeatures, nil); len(got) != 8 {
		t.Fatal("connection unusable after refused request")
	}
	if !tp.LinkUp() {
		t.Fatal("link dropped by a refused request")
	}
}

func (tp *testPort) String() string { return fmt.Sprint(tp.cfg.SocketPath) }

func TestWaitRxWakesOnKick(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	// Drain the token the link-up left.
	tp.RxBurst(makeBufs(1, 2048))
	select {
	case <-tp.RxReady():
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tp.WaitRx(ctx); err == nil {
		t.Fatal("WaitRx ignored a cancelled context with nothing kicked")
	}
	f.sendTx(testFrames(1, 64), 0, true)
	if err := tp.WaitRx(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := tp.RxBurst(makeBufs(1, 2048)); n != 1 {
		t.Fatalf("RxBurst after wake = %d", n)
	}
}
