package ifplugin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	dir string
	sim *vppsim.Sim
	mux *govppmux.Mux
}

func startEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: filepath.Join(dir, "api.sock"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	mux := govppmux.New(govppmux.Options{Socket: sim.SocketPath(), HealthInterval: 50 * time.Millisecond,
		HealthTimeout: 200 * time.Millisecond, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond, Logger: quiet})
	if err := mux.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mux.Close)
	waitFor(t, "VPP connected", mux.Connected)
	return &env{dir: dir, sim: sim, mux: mux}
}

// waitFor polls a condition; the long limit only guards against hangs.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agent is one incarnation of the agent: a scheduler with the plugin.
func (e *env) agent(t testing.TB) (*kvscheduler.Scheduler, *ifplugin.Plugin) {
	t.Helper()
	p := ifplugin.New(ifplugin.Options{Conn: e.mux.Conn(), Logger: quiet})
	s := kvscheduler.New(kvscheduler.Options{Logger: quiet, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	t.Cleanup(s.Close)
	if err := p.Register(s); err != nil {
		t.Fatal(err)
	}
	if bad := e.mux.Conn(); bad == nil {
		t.Fatal("nil connection")
	}
	e.mux.AddMessages(p.Messages()...)
	if err := e.mux.Compatibility(); err != nil {
		t.Fatalf("vppsim lacks messages the plugin uses: %v", err)
	}
	return s, p
}

func commit(t testing.TB, s *kvscheduler.Scheduler, kind kvscheduler.TxnKind, vals ...*ifmodel.Interface) kvscheduler.TxnRecord {
	t.Helper()
	txn := kvscheduler.Txn{Kind: kind}
	for _, v := range vals {
		txn.Values = append(txn.Values, kvscheduler.KeyValue{Key: ifplugin.Key(v.GetName()), Value: v})
	}
	rec, err := s.Commit(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func del(t testing.TB, s *kvscheduler.Scheduler, names ...string) {
	t.Helper()
	txn := kvscheduler.Txn{Kind: kvscheduler.TxnChange}
	for _, n := range names {
		txn.Values = append(txn.Values, kvscheduler.KeyValue{Key: ifplugin.Key(n)})
	}
	if _, err := s.Commit(context.Background(), txn); err != nil {
		t.Fatal(err)
	}
}

func state(t testing.TB, s *kvscheduler.Scheduler, name string) kvscheduler.ValueStatus {
	t.Helper()
	st, _ := s.StatusOf(ifplugin.Key(name))
	return st
}

func requireConfigured(t testing.TB, s *kvscheduler.Scheduler, names ...string) {
	t.Helper()
	for _, n := range names {
		if st := state(t, s, n); st.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s), want CONFIGURED", n, st.State, st.Error)
		}
	}
}

// writes counts VPP calls that change state (not dumps, pings, events).
func writes(counts map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range counts {
		if strings.HasSuffix(k, "_dump") || strings.HasPrefix(k, "control_ping") || strings.HasPrefix(k, "sockclnt") ||
			strings.HasPrefix(k, "want_") || k == "memclnt_keepalive_reply" {
			continue
		}
		out[k] = v
	}
	return out
}

func diff(after, before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func allTypes(dir string) []*ifmodel.Interface {
	return []*ifmodel.Interface{
		{Name: "lo1", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true, PhysAddress: "02:00:00:00:00:a1",
			IpAddresses: []string{"10.0.0.1/24", "2001:db8::1/64"}, Mtu: 1500},
		{Name: "mem1", Type: ifmodel.Interface_MEMIF, Enabled: true,
			Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 1, SocketFilename: filepath.Join(dir, "cnf1.sock"), Secret: "s3cret"}}},
		{Name: "vh1", Type: ifmodel.Interface_VHOST_USER, Enabled: true,
			Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: filepath.Join(dir, "vm1.sock"), Server: true}}},
		{Name: "tap1", Type: ifmodel.Interface_TAP, Enabled: true,
			Link: &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{Version: 2, HostIfName: "vtap1"}}},
		{Name: "af1", Type: ifmodel.Interface_AF_PACKET,
			Link: &ifmodel.Interface_Afpacket{Afpacket: &ifmodel.AfpacketLink{HostIfName: "lo"}}},
	}
}

func TestInterfaceTypesCreateUpdateDelete(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	vals := allTypes(e.dir)
	commit(t, s, kvscheduler.TxnChange, vals...)
	requireConfigured(t, s, "lo1", "mem1", "vh1", "tap1", "af1")
	seen := map[uint32]string{}
	for _, v := range vals {
		idx, ok := p.SwIfIndex(v.GetName())
		if !ok {
			t.Fatalf("%s has no sw_if_index", v.GetName())
		}
		if other, dup := seen[idx]; dup {
			t.Fatalf("%s and %s share sw_if_index %d", v.GetName(), other, idx)
		}
		seen[idx] = v.GetName()
		if n, _ := p.NameOf(idx); n != v.GetName() {
			t.Fatalf("NameOf(%d) = %q, want %q", idx, n, v.GetName())
		}
	}
	calls := e.sim.CallCounts()
	for _, m := range []string{"create_loopback", "memif_create_v2", "create_vhost_user_if_v2", "tap_create_v3", "af_packet_create_v3",
		"memif_socket_filename_add_del_v2", "sw_interface_set_mtu", "sw_interface_add_del_address"} {
		if calls[m] == 0 {
			t.Errorf("VPP never received %s", m)
		}
	}

	// In-place update: admin down, new address, new MAC: no recreate.
	before := writes(e.sim.CallCounts())
	lo := proto.Clone(vals[0]).(*ifmodel.Interface)
	lo.Enabled, lo.IpAddresses, lo.PhysAddress = false, []string{"10.0.0.1/24", "10.9.9.9/16"}, "02:00:00:00:00:b2"
	rec := commit(t, s, kvscheduler.TxnChange, lo)
	requireConfigured(t, s, "lo1")
	got := diff(writes(e.sim.CallCounts()), before)
	want := map[string]uint64{"sw_interface_set_flags": 1, "sw_interface_add_del_address": 2, "sw_interface_set_mac_address": 1}
	if !mapsEqual(got, want) {
		t.Fatalf("update sent %v, want %v (ops %+v)", got, want, rec.Ops)
	}
	idxBefore, _ := p.SwIfIndex("lo1")

	// Vhost modify in place.
	vh := proto.Clone(vals[2]).(*ifmodel.Interface)
	vh.GetVhostUser().EnableGso = true
	before = writes(e.sim.CallCounts())
	commit(t, s, kvscheduler.TxnChange, vh)
	requireConfigured(t, s, "vh1")
	if got := diff(writes(e.sim.CallCounts()), before); got["modify_vhost_user_if_v2"] != 1 || got["delete_vhost_user_if"] != 0 {
		t.Fatalf("vhost change sent %v, want one modify_vhost_user_if_v2 and no delete", got)
	}

	// Memif id change recreates.
	mem := proto.Clone(vals[1]).(*ifmodel.Interface)
	mem.GetMemif().Id = 2
	before = writes(e.sim.CallCounts())
	commit(t, s, kvscheduler.TxnChange, mem)
	requireConfigured(t, s, "mem1")
	if got := diff(writes(e.sim.CallCounts()), before); got["memif_delete"] != 1 || got["memif_create_v2"] != 1 {
		t.Fatalf("memif id change sent %v, want memif_delete + memif_create_v2", got)
	}
	if idx, _ := p.SwIfIndex("lo1"); idx != idxBefore {
		t.Fatalf("lo1 sw_if_index changed %d → %d by an in-place update", idxBefore, idx)
	}

	del(t, s, "lo1", "mem1", "vh1", "tap1", "af1")
	for _, n := range []string{"lo1", "mem1", "vh1", "tap1", "af1"} {
		if _, ok := p.SwIfIndex(n); ok {
			t.Errorf("%s still indexed after delete", n)
		}
	}
	c := e.sim.CallCounts()
	for _, m := range []string{"delete_loopback", "memif_delete", "delete_vhost_user_if", "tap_delete_v2", "af_packet_delete"} {
		if c[m] == 0 {
			t.Errorf("VPP never received %s", m)
		}
	}
	if socks := memifSockets(t, e); len(socks) != 1 {
		t.Fatalf("memif sockets left after deleting every memif: %v, want only VPP's id 0", socks)
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func memifSockets(t testing.TB, e *env) map[uint32]string {
	t.Helper()
	d, err := memif.NewServiceClient(e.mux.Conn()).MemifSocketFilenameDump(context.Background(), &memif.MemifSocketFilenameDump{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]string{}
	for {
		s, err := d.Recv()
		if err != nil {
			break
		}
		out[s.SocketID] = s.SocketFilename
	}
	return out
}

func TestMemifSocketSharingAndDuplicates(t *testing.T) {
	e := startEnv(t)
	s, _ := e.agent(t)
	sock := filepath.Join(e.dir, "shared.sock")
	m := func(name string, id uint32, file string) *ifmodel.Interface {
		return &ifmodel.Interface{Name: name, Type: ifmodel.Interface_MEMIF, Enabled: true,
			Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: id, SocketFilename: file}}}
	}
	commit(t, s, kvscheduler.TxnChange, m("a", 1, sock), m("b", 2, sock))
	requireConfigured(t, s, "a", "b")
	socks := memifSockets(t, e)
	if len(socks) != 2 || socks[1] != sock {
		t.Fatalf("sockets %v, want VPP's 0 plus %s as id 1 (one registration shared)", socks, sock)
	}
	// Same socket and id as "a": rejected, naming "a".
	commit(t, s, kvscheduler.TxnChange, m("c", 1, sock))
	st := state(t, s, "c")
	if st.State == kvscheduler.StateConfigured || !strings.Contains(st.Error, `"a"`) {
		t.Fatalf("duplicate memif is %s with error %q, want rejected naming \"a\"", st.State, st.Error)
	}
	// A second file takes the lowest free id.
	other := filepath.Join(e.dir, "other.sock")
	commit(t, s, kvscheduler.TxnChange, m("d", 1, other))
	requireConfigured(t, s, "d")
	if socks := memifSockets(t, e); socks[2] != other {
		t.Fatalf("sockets %v, want %s as id 2", socks, other)
	}
	// One user of the shared socket goes: still registered; both: freed,
	// and the freed id is reused.
	del(t, s, "a", "c")
	if socks := memifSockets(t, e); socks[1] != sock {
		t.Fatalf("shared socket unregistered while b uses it: %v", socks)
	}
	del(t, s, "b")
	if socks := memifSockets(t, e); socks[1] != "" {
		t.Fatalf("shared socket still registered after its last memif: %v", socks)
	}
	third := filepath.Join(e.dir, "third.sock")
	commit(t, s, kvscheduler.TxnChange, m("e", 1, third))
	requireConfigured(t, s, "e")
	if socks := memifSockets(t, e); socks[1] != third {
		t.Fatalf("sockets %v, want the freed id 1 reused for %s", socks, third)
	}
}

func TestRestartedAgentResyncsWithoutWrites(t *testing.T) {
	e := startEnv(t)
	s1, _ := e.agent(t)
	vals := allTypes(e.dir)
	commit(t, s1, kvscheduler.TxnChange, vals...)
	requireConfigured(t, s1, "lo1", "mem1", "vh1", "tap1", "af1")
	s1.Close()

	// A new agent incarnation: fresh plugin and scheduler, same VPP.
	s2, p2 := e.agent(t)
	before := writes(e.sim.CallCounts())
	rec := commit(t, s2, kvscheduler.TxnFullResync, vals...)
	if got := diff(writes(e.sim.CallCounts()), before); len(got) != 0 {
		t.Fatalf("resync of unchanged config sent VPP writes %v (ops %+v)", got, rec.Ops)
	}
	requireConfigured(t, s2, "lo1", "mem1", "vh1", "tap1", "af1")
	if _, ok := p2.SwIfIndex("mem1"); !ok {
		t.Fatal("retrieve did not rebuild the index")
	}
	// VPP's own local0 is obtained, never deleted.
	if st, ok := s2.StatusOf(ifplugin.Key("local0")); !ok || st.State != kvscheduler.StateObtained {
		t.Fatalf("local0 status %+v, want OBTAINED", st)
	}
	// The rebuilt memif socket table still refcounts: deleting the memif
	// frees its socket.
	del(t, s2, "mem1")
	if socks := memifSockets(t, e); len(socks) != 1 {
		t.Fatalf("memif socket not freed after resync + delete: %v", socks)
	}
}

func TestVPPRestartReconnectAndDownstreamResync(t *testing.T) {
	e := startEnv(t)
	events := e.mux.Events()
	s, p := e.agent(t)
	vals := allTypes(e.dir)
	commit(t, s, kvscheduler.TxnChange, vals...)
	requireConfigured(t, s, "lo1", "mem1", "vh1", "tap1", "af1")

	if err := e.sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kinds []govppmux.EventKind
	for len(kinds) < 2 {
		select {
		case ev := <-events:
			kinds = append(kinds, ev.Kind)
		case <-time.After(15 * time.Second):
			t.Fatalf("events after VPP restart: %v, want disconnected then connected", kinds)
		}
	}
	if kinds[0] != govppmux.EventDisconnected || kinds[1] != govppmux.EventConnected {
		t.Fatalf("events %v, want disconnected, connected", kinds)
	}
	rec := commit(t, s, kvscheduler.TxnDownstreamResync)
	requireConfigured(t, s, "lo1", "mem1", "vh1", "tap1", "af1")
	creates := 0
	for _, op := range rec.Ops {
		if op.Op == kvscheduler.OpCreate {
			creates++
		}
	}
	if creates != len(vals) {
		t.Fatalf("downstream resync after VPP restart made %d creates, want %d (ops %+v)", creates, len(vals), rec.Ops)
	}
	if _, ok := p.SwIfIndex("vh1"); !ok {
		t.Fatal("vh1 not indexed after resync")
	}
}

func TestInterfaceStateEvents(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	var mu sync.Mutex
	got := map[string][]*ifmodel.InterfaceState{}
	p.WatchState(func(st *ifmodel.InterfaceState) {
		mu.Lock()
		got[st.GetName()] = append(got[st.GetName()], st)
		mu.Unlock()
	})
	last := func(name string) *ifmodel.InterfaceState {
		mu.Lock()
		defer mu.Unlock()
		if l := got[name]; len(l) > 0 {
			return l[len(l)-1]
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.RunStateWatch(ctx, nil)
	waitFor(t, "want_interface_events sent", func() bool { return e.sim.CallCounts()["want_interface_events"] > 0 })

	lo := &ifmodel.Interface{Name: "lo1", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true}
	commit(t, s, kvscheduler.TxnChange, lo)
	requireConfigured(t, s, "lo1")
	// The event's state comes at once; VPP's name follows when events pause.
	waitFor(t, "lo1 admin UP state with VPP's name", func() bool {
		st := last("lo1")
		return st != nil && st.GetAdminStatus() == ifmodel.InterfaceState_UP && st.GetInternalName() != ""
	})
	if st := last("lo1"); st.GetType() != ifmodel.Interface_SOFTWARE_LOOPBACK || st.GetInternalName() == "" {
		t.Fatalf("state %v lacks type or internal name", st)
	}
	lo2 := proto.Clone(lo).(*ifmodel.Interface)
	lo2.Enabled = false
	commit(t, s, kvscheduler.TxnChange, lo2)
	waitFor(t, "lo1 admin DOWN state", func() bool { return last("lo1").GetAdminStatus() == ifmodel.InterfaceState_DOWN })
	del(t, s, "lo1")
	waitFor(t, "lo1 DELETED state", func() bool { return last("lo1").GetOperStatus() == ifmodel.InterfaceState_DELETED })
}

func TestInterfaceStateResubscribesAfterVPPRestart(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	var mu sync.Mutex
	var got []*ifmodel.InterfaceState
	p.WatchState(func(st *ifmodel.InterfaceState) { mu.Lock(); got = append(got, st); mu.Unlock() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := e.mux.Events()
	resync := e.mux.Events()
	go p.RunStateWatch(ctx, conn)
	waitFor(t, "first subscription", func() bool { return e.sim.CallCounts()["want_interface_events"] == 1 })

	if err := e.sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ev := range resync {
		if ev.Kind == govppmux.EventConnected {
			break
		}
	}
	waitFor(t, "subscription renewed after VPP restart", func() bool { return e.sim.CallCounts()["want_interface_events"] == 2 })
	lo := &ifmodel.Interface{Name: "lo9", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true}
	commit(t, s, kvscheduler.TxnChange, lo)
	requireConfigured(t, s, "lo9")
	waitFor(t, "lo9 UP state from the new session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, st := range got {
			if st.GetName() == "lo9" && st.GetAdminStatus() == ifmodel.InterfaceState_UP {
				return true
			}
		}
		return false
	})
}

// Interface events are triggers: a burst of them is read back from VPP
// once it pauses, coalesced (at most one filtered dump per interface, no
// dump per event), and every interface's last state is right (none lost in
// a burst, and a "went down", which VPP's event carries no bit for, shows).
func TestInterfaceStateFromEventsCoalescedReads(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	var mu sync.Mutex
	last := map[string]*ifmodel.InterfaceState{}
	p.WatchState(func(st *ifmodel.InterfaceState) { mu.Lock(); last[st.GetName()] = st; mu.Unlock() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.RunStateWatch(ctx, nil)
	waitFor(t, "want_interface_events sent", func() bool { return e.sim.CallCounts()["want_interface_events"] > 0 })

	const n = 60
	vals := make([]*ifmodel.Interface, n)
	for i := range vals {
		vals[i] = &ifmodel.Interface{Name: fmt.Sprintf("lo%d", i), Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true,
			PhysAddress: fmt.Sprintf("02:00:00:00:01:%02x", i), Mtu: 1400}
	}
	allAre := func(want ifmodel.InterfaceState_Status) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range vals {
				if st := last[v.GetName()]; st == nil || st.GetAdminStatus() != want {
					return false
				}
			}
			return true
		}
	}
	commit(t, s, kvscheduler.TxnChange, vals...)
	// UP first from the event, then again with VPP's details.
	waitFor(t, "every loopback UP with VPP's details", func() bool {
		if !allAre(ifmodel.InterfaceState_UP)() {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vals {
			if last[v.GetName()].GetInternalName() == "" {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for i, v := range vals {
		st := last[v.GetName()]
		if st.GetPhysAddress() != v.GetPhysAddress() || st.GetMtu() != 1400 || !strings.HasPrefix(st.GetInternalName(), "loop") ||
			st.GetType() != ifmodel.Interface_SOFTWARE_LOOPBACK {
			t.Errorf("state %d: %v, want MAC %s, MTU 1400, VPP name loop*, type loopback", i, st, v.GetPhysAddress())
		}
	}
	mu.Unlock()

	e.sim.ResetCallCounts()
	down := make([]*ifmodel.Interface, n)
	for i, v := range vals {
		down[i] = proto.Clone(v).(*ifmodel.Interface)
		down[i].Enabled = false
	}
	commit(t, s, kvscheduler.TxnChange, down...)
	waitFor(t, "every loopback DOWN", allAre(ifmodel.InterfaceState_DOWN))
	waitFor(t, "every loopback oper DOWN", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vals {
			if last[v.GetName()].GetOperStatus() != ifmodel.InterfaceState_DOWN {
				return false
			}
		}
		return true
	})
	if c := e.sim.CallCounts(); c["sw_interface_dump"] == 0 || c["sw_interface_dump"] > n || c["sw_interface_set_flags"] != n {
		t.Fatalf("calls %v, want %d set_flags and 1..%d sw_interface_dump (one read-back per interface at most)", c, n, n)
	}
}

// A memif VPP created without our tag (a create whose reply the agent never
// saw) on the socket+id a desired memif wants: the resync must end with the
// desired memif CONFIGURED and tagged, not failing forever "already used".
func TestUntaggedMemifInTheWayIsReplaced(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	sockFile := filepath.Join(e.dir, "stray.sock")
	mem := memif.NewServiceClient(e.mux.Conn())
	if _, err := mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: sockFile}); err != nil {
		t.Fatal(err)
	}
	stray, err := mem.MemifCreateV2(ctx, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, ID: 5011, SocketID: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, p := e.agent(t)
	want := &ifmodel.Interface{Name: "m5011", Type: ifmodel.Interface_MEMIF, Enabled: true,
		Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 5011, SocketFilename: sockFile, Secret: "x"}}}
	commit(t, s, kvscheduler.TxnFullResync, want)
	requireConfigured(t, s, "m5011")
	// VPP reuses the freed index, so the replacement shows in the calls.
	if _, ok := p.SwIfIndex("m5011"); !ok || e.sim.CallCounts()["memif_delete"] != 1 {
		t.Fatalf("m5011 indexed %v, memif_delete calls %d; want the untagged memif %d deleted once and m5011 indexed",
			ok, e.sim.CallCounts()["memif_delete"], stray.SwIfIndex)
	}
	n := 0
	for _, i := range e.sim.Interfaces() {
		if strings.HasPrefix(i.Name, "memif") {
			n++
			if i.Tag != "m5011" {
				t.Errorf("memif %+v, want tag m5011", i)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d memifs in VPP, want exactly the desired one", n)
	}

	// A vhost-user interface on the desired socket file, untagged.
	vh := vhost_user.NewServiceClient(e.mux.Conn())
	vfile := filepath.Join(e.dir, "vm.sock")
	if _, err := vh.CreateVhostUserIfV2(ctx, &vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: vfile}); err != nil {
		t.Fatal(err)
	}
	wantVh := &ifmodel.Interface{Name: "vm1", Type: ifmodel.Interface_VHOST_USER, Enabled: true,
		Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: vfile, Server: true}}}
	commit(t, s, kvscheduler.TxnChange, wantVh)
	requireConfigured(t, s, "vm1")
}

// The follow-up calls of a create go out pipelined; a failure among them
// must still fail the create by name, leave no interface behind, and the
// retry must succeed. No-op calls (MTU 0, no address) are not sent.
func TestCreateFollowUpsPipelinedFailureCleansUp(t *testing.T) {
	e := startEnv(t)
	s, p := e.agent(t)
	e.sim.ResetCallCounts()
	plain := &ifmodel.Interface{Name: "lo0", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true}
	commit(t, s, kvscheduler.TxnChange, plain)
	requireConfigured(t, s, "lo0")
	if c := writes(e.sim.CallCounts()); c["sw_interface_set_mtu"] != 0 || c["sw_interface_add_del_address"] != 0 || c["sw_interface_set_mac_address"] != 0 ||
		c["sw_interface_tag_add_del"] != 1 || c["sw_interface_set_flags"] != 1 {
		t.Fatalf("writes %v for a plain enabled loopback, want create, tag and set_flags only", c)
	}

	e.sim.FailNext("sw_interface_set_flags", 1, -1)
	lo := &ifmodel.Interface{Name: "lo1", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true, Mtu: 1500,
		IpAddresses: []string{"10.0.0.1/24"}}
	rec := commit(t, s, kvscheduler.TxnChange, lo)
	var failed bool
	for _, op := range rec.Ops {
		if op.Key == ifplugin.Key("lo1") && op.Error != "" {
			failed = strings.Contains(op.Error, "sw_interface_set_flags")
		}
	}
	if !failed {
		t.Fatalf("ops %+v: want lo1's create failed naming sw_interface_set_flags", rec.Ops)
	}
	waitFor(t, "lo1 configured by a retry", func() bool { return state(t, s, "lo1").State == kvscheduler.StateConfigured })
	loops := 0
	for _, i := range e.sim.Interfaces() {
		if strings.HasPrefix(i.Name, "loop") {
			loops++
			if i.Tag == "lo1" && !i.AdminUp {
				t.Errorf("lo1 %+v not admin up after the retry", i)
			}
		}
	}
	if loops != 2 {
		t.Fatalf("%d loopbacks in VPP, want 2 (the failed create cleaned up)", loops)
	}
	if _, ok := p.SwIfIndex("lo1"); !ok {
		t.Fatal("lo1 not indexed")
	}
}
