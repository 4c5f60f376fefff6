package govppmux_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/acl"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/nat44_ed"

	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/test/vppsim"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func fastOpts(socket string) govppmux.Options {
	return govppmux.Options{Socket: socket, HealthInterval: 30 * time.Millisecond, HealthTimeout: 100 * time.Millisecond,
		HealthThreshold: 2, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond, Logger: quiet}
}

func nextEvent(t *testing.T, ch <-chan govppmux.Event) govppmux.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no connection event")
		return govppmux.Event{}
	}
}

func TestConnectsWhenVPPAppearsLaterAndCountsCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	// A stale socket file (its server gone) where VPP's socket goes makes
	// every attempt fail at once (no waiting for the file to appear);
	// vppsim replaces it, as it only replaces sockets nobody listens on.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	logs := &lineCounter{}
	opts := fastOpts(sock)
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := govppmux.New(opts)
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// No VPP yet: calls fail fast with ErrNotConnected, nothing hangs.
	_, err = memclnt.NewServiceClient(m.Conn()).ControlPing(ctx, &memclnt.ControlPing{})
	if !errors.Is(err, govppmux.ErrNotConnected) || !strings.Contains(err.Error(), "control_ping") {
		t.Fatalf("call without VPP: err = %v, want ErrNotConnected naming control_ping", err)
	}
	// Keep failing for well over govpp's default 3 attempts: it must not give up.
	for deadline := time.Now().Add(20 * time.Second); logs.count("VPP connect attempt failed") < 8; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d connect attempts logged", logs.count("VPP connect attempt failed"))
		}
	}
	if m.Connected() {
		t.Fatal("connected without VPP")
	}
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected || ev.Time.IsZero() {
		t.Fatalf("first event %+v, want connected with a time", ev)
	}
	if !m.Connected() {
		t.Fatal("Connected() false after the connected event")
	}
	ifs := interfaces.NewServiceClient(m.Conn())
	for range 3 {
		if _, err := ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: 0}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := d.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n == 0 {
		t.Fatal("dump returned no interfaces (local0 expected)")
	}
	calls := m.Calls()
	if calls["sw_interface_set_flags"] != 3 || calls["sw_interface_dump"] != 1 || calls["control_ping"] != 0 {
		t.Fatalf("calls %v, want set_flags 3, dump 1, and health/dump pings not counted", calls)
	}
}

func TestCompatibilityNamesEveryMissingMessage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	opts := fastOpts(sock)
	opts.Messages = []api.Message{&interfaces.SwInterfaceSetFlags{}, &acl.ACLAddReplace{}, &nat44_ed.Nat44EdPluginEnableDisable{}}
	m := govppmux.New(opts)
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ev := nextEvent(t, events)
	if ev.Kind != govppmux.EventConnected {
		t.Fatalf("event %+v, want connected (missing messages are reported, not fatal)", ev)
	}
	if len(ev.Incompatible) != 2 {
		t.Fatalf("incompatible %v, want the acl and nat44 messages", ev.Incompatible)
	}
	err = m.Compatibility()
	for _, name := range []string{"acl_add_replace", "nat44_ed_plugin_enable_disable"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("compatibility error %v does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "sw_interface_set_flags") {
		t.Errorf("compatibility error %v names a message VPP has", err)
	}
}

func TestVPPRestartAndHangReconnect(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	m := govppmux.New(fastOpts(sock))
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	conn := m.Conn() // kept across reconnects, as descriptors do
	ping := memclnt.NewServiceClient(conn)
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected {
		t.Fatalf("event %+v, want connected", ev)
	}

	for round, fault := range []func(){
		func() { _ = sim.Restart(ctx) },
		func() { sim.Hang(); go func() { time.Sleep(500 * time.Millisecond); sim.Resume() }() },
	} {
		fault()
		if ev := nextEvent(t, events); ev.Kind != govppmux.EventDisconnected || ev.Err == nil {
			t.Fatalf("round %d: event %+v, want disconnected with a reason", round, ev)
		}
		if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected {
			t.Fatalf("round %d: event %+v, want connected again", round, ev)
		}
		if _, err := ping.ControlPing(ctx, &memclnt.ControlPing{}); err != nil {
			t.Fatalf("round %d: the connection kept from before the fault does not work: %v", round, err)
		}
	}
}

func TestCloseClosesEvents(t *testing.T) {
	m := govppmux.New(fastOpts(filepath.Join(t.TempDir(), "none.sock")))
	ev := m.Events()
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
	m.Close()
	if _, ok := <-ev; ok {
		t.Fatal("events channel open after Close")
	}
}

// lineCounter is an io.Writer collecting log output.
type lineCounter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineCounter) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// A control_ping queued behind a backlog of slow calls times out, but the
// replies to those calls prove VPP alive: the session must survive (the old
// verdict declared VPP gone and cancelled every in-flight call). Once the
// backlog is gone and VPP answers nothing, the verdict must still come.
func TestBusyVPPIsNotDeclaredGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	m := govppmux.New(fastOpts(sock))
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected {
		t.Fatalf("event %+v, want connected", ev)
	}
	// vppsim serves one client's messages in order: 16 callers with 20 ms
	// per call keep a ~320 ms queue ahead of every ping (timeout 100 ms).
	sim.SetLatency("sw_interface_set_flags", 20*time.Millisecond)
	ifs := interfaces.NewServiceClient(m.Conn())
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var calls, failures atomicCount
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				if _, err := ifs.SwInterfaceSetFlags(loadCtx, &interfaces.SwInterfaceSetFlags{SwIfIndex: 0}); err != nil {
					if loadCtx.Err() == nil {
						failures.add()
					}
					continue
				}
				calls.add()
			}
		}()
	}
	// Many health intervals (30 ms) with pings starved by the backlog.
	for calls.get() < 150 {
		select {
		case ev := <-events:
			stopLoad()
			wg.Wait()
			t.Fatalf("event %+v while VPP answered %d calls, want the session kept", ev, calls.get())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopLoad()
	wg.Wait()
	if failures.get() != 0 || !m.Connected() {
		t.Fatalf("%d calls failed under load, connected=%v; want none failed and connected", failures.get(), m.Connected())
	}
	sim.SetLatency("sw_interface_set_flags", 0)
	sim.Hang()
	defer sim.Resume()
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventDisconnected {
		t.Fatalf("event %+v with VPP hung, want disconnected", ev)
	}
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (a *atomicCount) add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *atomicCount) get() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// A call in flight when its session ends (VPP hung and declared gone, or
// Close) fails at once, not after CallTimeout: govpp by itself leaves it
// waiting for a reply that cannot come.
func TestCallsInFlightEndWithTheSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "api.sock")
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	opts := fastOpts(sock)
	opts.CallTimeout = 30 * time.Second
	m := govppmux.New(opts)
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected {
		t.Fatalf("event %+v, want connected", ev)
	}
	sim.Hang()
	defer sim.Resume()
	ifs := interfaces.NewServiceClient(m.Conn())
	done := make(chan error, 2)
	start := time.Now()
	go func() {
		_, err := ifs.SwInterfaceSetFlags(ctx, &interfaces.SwInterfaceSetFlags{SwIfIndex: 0, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
		done <- err
	}()
	go func() {
		st, err := m.Conn().NewStream(ctx)
		if err == nil {
			defer st.Close()
			if err = st.SendMsg(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}); err == nil {
				_, err = st.RecvMsg()
			}
		}
		done <- err
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a call to a hung VPP succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("call still waiting %v after the session ended (CallTimeout is 30 s)", time.Since(start))
		}
	}
	m.Close()
}

// A VPP whose every reply takes 400 ms (a busy main thread) is slow, not
// gone: with the default health settings the session stays up. govpp's own
// health probe gives up after 3 replies slower than 250 ms, so the mux
// must not leave that decision to it.
func TestSlowVPPStaysConnected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: sock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	proxy := vpptarget.NewSlowProxy(t, dir, sock, 400*time.Millisecond)
	m := govppmux.New(govppmux.Options{Socket: proxy.Path, Logger: quiet})
	events := m.Events()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ev := nextEvent(t, events); ev.Kind != govppmux.EventConnected {
		t.Fatalf("event %+v, want connected", ev)
	}
	select {
	case ev := <-events:
		t.Fatalf("a slow but answering VPP was dropped: %+v", ev)
	case <-time.After(6 * time.Second):
	}
	if !m.Connected() {
		t.Fatal("not connected")
	}
}
