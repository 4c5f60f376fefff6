package memif

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pair is a connected master and slave over a socket in a temp dir.
type pair struct {
	sock          *Socket
	master, slave *Interface
	mEvents       *events
	sEvents       *events
}

type events struct {
	mu  sync.Mutex
	evs []LinkEvent
}

func (e *events) add(ev LinkEvent) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }
func (e *events) list() []LinkEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]LinkEvent(nil), e.evs...)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPair(t testing.TB, mcfg, scfg Config) *pair {
	t.Helper()
	path := filepath.Join(t.TempDir(), "memif.sock")
	s, err := Listen(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{sock: s, mEvents: &events{}, sEvents: &events{}}
	mcfg.Logger, scfg.Logger = quietLogger(), quietLogger()
	mcfg.OnLink, scfg.OnLink = p.mEvents.add, p.sEvents.add
	if scfg.RetryInterval == 0 {
		scfg.RetryInterval = 20 * time.Millisecond
	}
	if p.master, err = NewMaster(s, mcfg); err != nil {
		t.Fatal(err)
	}
	if p.slave, err = NewSlave(path, scfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.slave.Close()
		p.master.Close()
		s.Close()
	})
	if err := p.master.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := p.slave.Connect(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) waitUp(t testing.TB) {
	t.Helper()
	ctx := ctxT(t)
	if err := p.master.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.slave.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func frame(seq, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(seq*7 + i)
	}
	if size >= 4 {
		b[0], b[1], b[2], b[3] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	}
	return b
}

func makeBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// transfer sends frames on tx and reads them on rx, checking contents and order.
func transfer(t *testing.T, tx, rx *Queue, frames [][]byte) {
	t.Helper()
	ctx := ctxT(t)
	bufs := makeBufs(32, 16384)
	sent, got := 0, 0
	for got < len(frames) {
		if sent < len(frames) {
			n, err := tx.TxBurst(frames[sent:min(sent+16, len(frames))])
			if err != nil {
				t.Fatalf("TxBurst: %v", err)
			}
			sent += n
		}
		n, err := rx.RxBurst(bufs)
		if err != nil {
			t.Fatalf("RxBurst: %v", err)
		}
		for k := 0; k < n; k++ {
			if !bytes.Equal(bufs[k], frames[got]) {
				t.Fatalf("frame %d: got %d bytes %x..., want %d bytes %x...", got, len(bufs[k]), head(bufs[k]), len(frames[got]), head(frames[got]))
			}
			bufs[k] = bufs[k][:cap(bufs[k])]
			got++
		}
		if n == 0 && sent == len(frames) {
			if err := rx.Wait(ctx); err != nil {
				t.Fatalf("Wait after %d of %d frames: %v", got, len(frames), err)
			}
		}
	}
}

func head(b []byte) []byte { return b[:min(8, len(b))] }

func TestFramesBothWaysBothModes(t *testing.T) {
	for _, mode := range []Mode{ModeEthernet, ModeIP} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPair(t, Config{ID: 3, Mode: mode}, Config{ID: 3, Mode: mode})
			p.waitUp(t)
			var frames [][]byte
			for i := range 100 {
				frames = append(frames, frame(i, 60+i*13))
			}
			transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], frames)
			transfer(t, p.master.TxQueues()[0], p.slave.RxQueues()[0], frames)
			if st := p.master.RxQueues()[0].Stats(); st.Packets != 100 {
				t.Fatalf("master rx stats %+v, want 100 packets", st)
			}
			inf := p.master.Info()
			if !inf.LinkUp || inf.Mode != mode || inf.PeerIfName != "memif3" || inf.RingSize != 1024 {
				t.Fatalf("master info %+v", inf)
			}
		})
	}
}

func TestModeMismatchRefused(t *testing.T) {
	p := newPair(t, Config{ID: 1, Mode: ModeEthernet}, Config{ID: 1, Mode: ModeIP, RetryInterval: time.Hour})
	time.Sleep(200 * time.Millisecond) // let the one attempt complete; nothing may come up
	if p.master.IsUp() || p.slave.IsUp() {
		t.Fatal("link up despite mode mismatch")
	}
}

func TestSecret(t *testing.T) {
	t.Run("mismatch", func(t *testing.T) {
		p := newPair(t, Config{ID: 1, Secret: "s3cret"}, Config{ID: 1, Secret: "wrong", RetryInterval: time.Hour})
		time.Sleep(200 * time.Millisecond)
		if p.master.IsUp() || p.slave.IsUp() {
			t.Fatal("link up with a wrong secret")
		}
	})
	t.Run("match", func(t *testing.T) {
		p := newPair(t, Config{ID: 1, Secret: "s3cret"}, Config{ID: 1, Secret: "s3cret"})
		p.waitUp(t)
	})
}

func TestPuntInjectRejected(t *testing.T) {
	if _, err := NewSlave("/nonexistent", Config{Mode: ModePuntInject}); err == nil || !strings.Contains(err.Error(), "punt") {
		t.Fatalf("err = %v, want punt/inject refusal", err)
	}
}

func TestSeveralQueuesAndInterfacesOnOneSocket(t *testing.T) {
	p := newPair(t, Config{ID: 1, NumS2M: 4, NumM2S: 2}, Config{ID: 1, NumS2M: 3, NumM2S: 3, Log2RingSize: 6})
	// A second interface on the same socket, distinguished by id.
	m2, err := NewMaster(p.sock, Config{ID: 2, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	s2, err := NewSlave(p.sock.Path(), Config{ID: 2, Logger: quietLogger(), RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m2.Connect()
	s2.Connect()
	p.waitUp(t)
	for _, i := range []*Interface{m2, s2} { // both sides: the master's queues too
		if err := i.WaitUp(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	// Like VPP, the slave decides the queue counts.
	if len(p.slave.TxQueues()) != 3 || len(p.slave.RxQueues()) != 3 || len(p.master.RxQueues()) != 3 || len(p.master.TxQueues()) != 3 {
		t.Fatalf("queues: slave %d/%d master %d/%d, want 3 each", len(p.slave.TxQueues()), len(p.slave.RxQueues()),
			len(p.master.RxQueues()), len(p.master.TxQueues()))
	}
	if p.master.Info().RingSize != 64 {
		t.Fatalf("ring size %d, want 64", p.master.Info().RingSize)
	}
	for q := range 3 {
		frames := [][]byte{frame(q, 100+q), frame(q+10, 200)}
		transfer(t, p.slave.TxQueues()[q], p.master.RxQueues()[q], frames)
	}
	for q := range 3 {
		frames := [][]byte{frame(q, 300+q)}
		transfer(t, p.master.TxQueues()[q], p.slave.RxQueues()[q], frames)
	}
	transfer(t, s2.TxQueues()[0], m2.RxQueues()[0], [][]byte{frame(99, 64)})
}

func TestChainedJumboFrames(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1, BufferSize: 2048, Log2RingSize: 5})
	p.waitUp(t)
	var frames [][]byte
	for i := range 20 {
		frames = append(frames, frame(i, 9000), frame(i+100, 2048), frame(i+200, 2049), frame(i+300, 0))
	}
	transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], frames)
	transfer(t, p.master.TxQueues()[0], p.slave.RxQueues()[0], frames)
}

func TestFrameLargerThanRing(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1, BufferSize: 256, Log2RingSize: 2})
	p.waitUp(t)
	for _, q := range []*Queue{p.slave.TxQueues()[0], p.master.TxQueues()[0]} {
		n, err := q.TxBurst([][]byte{frame(2, 256*4+1), frame(1, 64)})
		if n != 0 || !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("TxBurst = %d, %v; want 0 and ErrFrameTooLarge", n, err)
		}
	}
	// The slave knows its buffer size, so it refuses even with a partly used ring.
	n, err := p.slave.TxQueues()[0].TxBurst([][]byte{frame(1, 64), frame(2, 256*4+1)})
	if n != 1 || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("TxBurst = %d, %v; want 1 and ErrFrameTooLarge", n, err)
	}
}

func TestRxDropsFrameLargerThanBuffer(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1})
	p.waitUp(t)
	tx, rx := p.slave.TxQueues()[0], p.master.RxQueues()[0]
	if n, err := tx.TxBurst([][]byte{frame(1, 3000), frame(2, 100)}); n != 2 || err != nil {
		t.Fatalf("TxBurst = %d, %v", n, err)
	}
	bufs := makeBufs(4, 1500)
	n, err := rx.RxBurst(bufs)
	if err != nil || n != 1 || !bytes.Equal(bufs[0], frame(2, 100)) {
		t.Fatalf("RxBurst = %d, %v; want only the 100-byte frame", n, err)
	}
	if d := rx.Stats().Drops; d != 1 {
		t.Fatalf("drops %d, want 1", d)
	}
}

func TestLinkDownOnPeerCloseAndReconnect(t *testing.T) {
	for _, closer := range []string{"slave", "master"} {
		t.Run(closer, func(t *testing.T) {
			p := newPair(t, Config{ID: 1}, Config{ID: 1})
			p.waitUp(t)
			oldRx := p.master.RxQueues()[0]
			ctx := ctxT(t)
			if closer == "slave" {
				p.slave.Disconnect()
			} else {
				p.master.Disconnect()
			}
			if err := p.master.WaitDown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.slave.WaitDown(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := oldRx.RxBurst(makeBufs(1, 64)); err != ErrDisconnected {
				t.Fatalf("stale queue: %v, want ErrDisconnected", err)
			}
			if err := oldRx.Wait(ctx); err != ErrDisconnected {
				t.Fatalf("stale queue wait: %v, want ErrDisconnected", err)
			}
			if closer == "slave" {
				p.slave.Connect()
			} else {
				p.master.Connect() // the slave keeps retrying meanwhile
			}
			p.waitUp(t)
			transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], [][]byte{frame(1, 64)})
			want := []LinkEvent{{Up: true}, {Up: false}, {Up: true}}
			for _, evs := range [][]LinkEvent{p.mEvents.list(), p.sEvents.list()} {
				if len(evs) != 3 || evs[0].Up != true || evs[1].Up != false || evs[1].Reason == "" || evs[2].Up != true {
					t.Fatalf("events %+v, want %v with a down reason", evs, want)
				}
			}
		})
	}
}

func TestSocketCloseTakesLinkDownAndSlaveRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.sock")
	s, err := Listen(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMaster(s, Config{ID: 5, Logger: quietLogger()})
	sl, _ := NewSlave(path, Config{ID: 5, Logger: quietLogger(), RetryInterval: 10 * time.Millisecond})
	defer sl.Close()
	m.Connect()
	sl.Connect()
	ctx := ctxT(t)
	if err := sl.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	s.Close()
	if err := sl.WaitDown(ctx); err != nil {
		t.Fatal(err)
	}
	// A new master process on the same path: the slave finds it by itself.
	s2, err := Listen(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m2, _ := NewMaster(s2, Config{ID: 5, Logger: quietLogger()})
	defer m2.Close()
	m2.Connect()
	if err := sl.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWaitWakesOnInterruptAndCancel(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1})
	p.waitUp(t)
	rx, tx := p.slave.RxQueues()[0], p.master.TxQueues()[0]
	done := make(chan error, 1)
	go func() { done <- rx.PollWait(context.Background(), 10) }()
	// Whether the waiter is already asleep or still spinning, the frame must wake it.
	time.Sleep(20 * time.Millisecond)
	if n, err := tx.TxBurst([][]byte{frame(1, 64)}); n != 1 || err != nil {
		t.Fatalf("TxBurst = %d, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PollWait: %v", err)
	}
	if n, _ := rx.RxBurst(makeBufs(4, 2048)); n != 1 {
		t.Fatalf("RxBurst after wake = %d, want 1", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- rx.Wait(ctx) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Wait after cancel = %v", err)
	}
	// The next Wait still works after a cancelled one.
	go func() { done <- rx.Wait(context.Background()) }()
	tx.TxBurst([][]byte{frame(2, 64)})
	if err := <-done; err != nil {
		t.Fatalf("Wait after a cancelled Wait: %v", err)
	}
}

func TestDuplicateIDRejected(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1})
	if _, err := NewMaster(p.sock, Config{ID: 1}); err == nil {
		t.Fatal("second master with id 1 accepted")
	}
}
