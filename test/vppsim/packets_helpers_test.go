package vppsim

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	vppmemif "go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/core"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// pktEnv is vppsim with its default packet drivers and a stats segment, driven over the
// binary API by govpp, with sockets in a short temp dir (unix paths are limited to 108
// bytes).
type pktEnv struct {
	t      testing.TB
	sim    *Sim
	conn   *core.Connection
	ch     api.Channel
	dir    string
	events chan api.Message
	log    *slog.Logger
	// link is the last link state seen in events, by sw_if_index: waiting for one
	// interface must not lose another's event.
	link map[uint32]bool
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func startPacketSim(t testing.TB) *pktEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "vs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("VPPSIM_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sim, err := Start(context.Background(), Config{
		Socket: filepath.Join(dir, "api.sock"), StatsSocket: filepath.Join(dir, "stats.sock"), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e := &pktEnv{t: t, sim: sim, dir: dir, log: log, events: make(chan api.Message, 256), link: map[uint32]bool{}}
	e.conn = connect(t, sim)
	e.ch, err = e.conn.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ch.Close)
	if _, err := e.ch.SubscribeNotification(e.events, &interfaces.SwInterfaceEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := e.ch.SendRequest(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 1}).ReceiveReply(&interfaces.WantInterfaceEventsReply{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *pktEnv) path(name string) string { return filepath.Join(e.dir, name) }

func (e *pktEnv) memifSocket(id uint32, file string) {
	e.t.Helper()
	_, err := vppmemif.NewServiceClient(e.conn).MemifSocketFilenameAddDelV2(context.Background(),
		&vppmemif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: id, SocketFilename: file})
	if err != nil {
		e.t.Fatalf("memif_socket_filename_add_del_v2 %s: %v", file, err)
	}
}

// createMemif creates a memif over the API and sets it admin up.
func (e *pktEnv) createMemif(m *vppmemif.MemifCreateV2) uint32 {
	e.t.Helper()
	rep, err := vppmemif.NewServiceClient(e.conn).MemifCreateV2(context.Background(), m)
	if err != nil {
		e.t.Fatalf("memif_create_v2 id %d: %v", m.ID, err)
	}
	idx := uint32(rep.SwIfIndex)
	e.adminUp(idx, true)
	return idx
}

func (e *pktEnv) adminUp(idx uint32, up bool) {
	e.t.Helper()
	if _, err := interfaces.NewServiceClient(e.conn).SwInterfaceSetFlags(context.Background(), setFlags(idx, up)); err != nil {
		e.t.Fatalf("sw_interface_set_flags %d: %v", idx, err)
	}
}

func (e *pktEnv) xconnect(rx, tx uint32, enable bool) {
	e.t.Helper()
	_, err := l2.NewServiceClient(e.conn).SwInterfaceSetL2Xconnect(context.Background(), &l2.SwInterfaceSetL2Xconnect{
		RxSwIfIndex: interface_types.InterfaceIndex(rx), TxSwIfIndex: interface_types.InterfaceIndex(tx), Enable: enable})
	if err != nil {
		e.t.Fatalf("sw_interface_set_l2_xconnect %d->%d: %v", rx, tx, err)
	}
}

// waitLink waits for a sw_interface_event saying idx's link is up (or down).
func (e *pktEnv) waitLink(idx uint32, up bool) {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if st, seen := e.link[idx]; seen && st == up {
			delete(e.link, idx) // consumed: a later wait needs a new event
			return
		}
		select {
		case m := <-e.events:
			ev := m.(*interfaces.SwInterfaceEvent)
			if !ev.Deleted {
				e.link[uint32(ev.SwIfIndex)] = ev.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0
			}
		case <-deadline:
			e.t.Fatalf("no link up=%v event for sw_if_index %d", up, idx)
		}
	}
}

// noLinkEvent checks that no link-up event for idx arrives within d.
func (e *pktEnv) noLinkUp(idx uint32, d time.Duration) {
	e.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-e.events:
			ev := m.(*interfaces.SwInterfaceEvent)
			if uint32(ev.SwIfIndex) == idx && ev.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0 {
				e.t.Fatalf("sw_if_index %d came up: %+v", idx, ev)
			}
		case <-deadline:
			return
		}
	}
}

func (e *pktEnv) counters(idx uint32) Counters {
	e.t.Helper()
	e.sim.stMu.Lock()
	defer e.sim.stMu.Unlock()
	ifc := e.sim.st.get(idx)
	if ifc == nil {
		e.t.Fatalf("no interface %d", idx)
	}
	return ifc.port.Counters()
}

// cnf is a Go memif peer playing the CNF.
type cnf struct {
	t   testing.TB
	ifc *memif.Interface
}

func newSlaveCNF(t testing.TB, path string, cfg memif.Config) *cnf {
	t.Helper()
	cfg.RetryInterval = 50 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	ifc, err := memif.NewSlave(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ifc.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ifc.Close() })
	return &cnf{t: t, ifc: ifc}
}

func (c *cnf) waitUp() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ifc.WaitUp(ctx); err != nil {
		c.t.Fatalf("cnf link up: %v", err)
	}
}

// testFrame is an Ethernet frame dst<-src of size bytes carrying seq.
func testFrame(dst, src [6]byte, size int, seq uint32) []byte {
	f := make([]byte, size)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	f[12], f[13] = 0x88, 0xb5 // local experimental ethertype
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < size; i++ {
		f[i] = byte(i)
	}
	return f
}

// send transmits every frame, waiting for ring space when the ring is full.
func (c *cnf) send(frames [][]byte) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(frames) > 0 {
		qs := c.ifc.TxQueues()
		if len(qs) == 0 {
			c.t.Fatal("cnf send: link down")
		}
		n, err := qs[0].TxBurst(frames)
		if err != nil {
			c.t.Fatalf("cnf send: %v", err)
		}
		frames = frames[n:]
		if n == 0 {
			if time.Now().After(deadline) {
				c.t.Fatalf("cnf send: ring stayed full, %d left", len(frames))
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// recv collects frames until want arrived or quiet passes without one, and returns
// copies of them.
func (c *cnf) recv(want int, quiet time.Duration) [][]byte {
	c.t.Helper()
	var got [][]byte
	bufs := make([][]byte, 64)
	last := time.Now()
	for len(got) < want && time.Since(last) < quiet {
		qs := c.ifc.RxQueues()
		if len(qs) == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		for i := range bufs {
			bufs[i] = make([]byte, 10240)
		}
		n, err := qs[0].RxBurst(bufs)
		if err != nil && !errors.Is(err, memif.ErrDisconnected) {
			c.t.Fatalf("cnf recv: %v", err)
		}
		for _, b := range bufs[:n] {
			got = append(got, b)
		}
		if n > 0 {
			last = time.Now()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_ = qs[0].Wait(ctx)
		cancel()
	}
	return got
}

func frames(dst, src [6]byte, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = testFrame(dst, src, size, uint32(i))
	}
	return out
}

func seqs(fs [][]byte) []uint32 {
	out := make([]uint32, len(fs))
	for i, f := range fs {
		out[i] = binary.BigEndian.Uint32(f[14:])
	}
	return out
}

func interfaceIndex(idx uint32) interface_types.InterfaceIndex {
	return interface_types.InterfaceIndex(idx)
}

func socketExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (e *pktEnv) port(idx uint32) *Port {
	e.t.Helper()
	p, ok := e.sim.Port(idx)
	if !ok {
		e.t.Fatalf("no interface %d", idx)
	}
	return p
}

// eventually polls cond: counters are updated after a burst is handed to the peer, so
// the peer can see frames a moment before vppsim has counted them.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never held", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
