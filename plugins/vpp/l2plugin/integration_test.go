package l2plugin_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/l2plugin"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	dir string
	sim *vppsim.Sim
	mux *govppmux.Mux
}

func startEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: filepath.Join(dir, "api.sock"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	mux := govppmux.New(govppmux.Options{Socket: sim.SocketPath(), ReconnectMin: 10 * time.Millisecond, Logger: quiet})
	if err := mux.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mux.Close)
	deadline := time.Now().Add(15 * time.Second)
	for !mux.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("VPP never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &env{dir: dir, sim: sim, mux: mux}
}

func (e *env) agent(t *testing.T) (*kvscheduler.Scheduler, *ifplugin.Plugin, *l2plugin.Plugin) {
	t.Helper()
	ifp := ifplugin.New(ifplugin.Options{Conn: e.mux.Conn(), Logger: quiet})
	l2p := l2plugin.New(l2plugin.Options{Conn: e.mux.Conn(), IfIndex: ifp, Logger: quiet})
	s := kvscheduler.New(kvscheduler.Options{Logger: quiet, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	t.Cleanup(s.Close)
	if err := ifp.Register(s); err != nil {
		t.Fatal(err)
	}
	if err := l2p.Register(s); err != nil {
		t.Fatal(err)
	}
	e.mux.AddMessages(append(ifp.Messages(), l2p.Messages()...)...)
	if err := e.mux.Compatibility(); err != nil {
		t.Fatalf("vppsim lacks messages: %v", err)
	}
	return s, ifp, l2p
}

func commit(t *testing.T, s *kvscheduler.Scheduler, kind kvscheduler.TxnKind, kvs ...kvscheduler.KeyValue) kvscheduler.TxnRecord {
	t.Helper()
	rec, err := s.Commit(context.Background(), kvscheduler.Txn{Kind: kind, Values: kvs})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func loop(name string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: ifplugin.Key(name), Value: &ifmodel.Interface{Name: name, Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true}}
}

func xc(rx, tx string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: l2plugin.XConnectKey(rx), Value: &l2model.XConnectPair{ReceiveInterface: rx, TransmitInterface: tx}}
}

func stateOf(s *kvscheduler.Scheduler, key string) kvscheduler.ValueStatus {
	st, _ := s.StatusOf(key)
	return st
}

func xconnects(t *testing.T, e *env) map[uint32]uint32 {
	t.Helper()
	d, err := l2.NewServiceClient(e.mux.Conn()).L2XconnectDump(context.Background(), &l2.L2XconnectDump{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]uint32{}
	for {
		x, err := d.Recv()
		if err != nil {
			return out
		}
		out[uint32(x.RxSwIfIndex)] = uint32(x.TxSwIfIndex)
	}
}

func bridgeDomains(t *testing.T, e *env) []*l2.BridgeDomainDetails {
	t.Helper()
	d, err := l2.NewServiceClient(e.mux.Conn()).BridgeDomainDump(context.Background(), &l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	var out []*l2.BridgeDomainDetails
	for {
		b, err := d.Recv()
		if err != nil {
			return out
		}
		out = append(out, b)
	}
}

func TestXConnectPendingUntilBothInterfaces(t *testing.T) {
	e := startEnv(t)
	s, ifp, _ := e.agent(t)
	commit(t, s, kvscheduler.TxnChange, xc("a", "b"), xc("b", "a"), loop("a"))
	if st := stateOf(s, l2plugin.XConnectKey("a")); st.State != kvscheduler.StatePending {
		t.Fatalf("xconnect a→b is %s with b missing, want PENDING", st.State)
	}
	if n := len(xconnects(t, e)); n != 0 {
		t.Fatalf("VPP has %d xconnects before both interfaces exist", n)
	}
	commit(t, s, kvscheduler.TxnChange, loop("b"))
	for _, k := range []string{l2plugin.XConnectKey("a"), l2plugin.XConnectKey("b")} {
		if st := stateOf(s, k); st.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s), want CONFIGURED", k, st.State, st.Error)
		}
	}
	ia, _ := ifp.SwIfIndex("a")
	ib, _ := ifp.SwIfIndex("b")
	if got := xconnects(t, e); got[ia] != ib || got[ib] != ia || len(got) != 2 {
		t.Fatalf("VPP xconnects %v, want %d↔%d", got, ia, ib)
	}

	// Removing b takes the xconnects down and leaves them PENDING.
	commit(t, s, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: ifplugin.Key("b")})
	if st := stateOf(s, l2plugin.XConnectKey("a")); st.State != kvscheduler.StatePending {
		t.Fatalf("xconnect a→b is %s after b went, want PENDING", st.State)
	}
	if got := xconnects(t, e); len(got) != 0 {
		t.Fatalf("VPP xconnects %v after b went, want none", got)
	}
}

func TestBridgeDomainWithMembers(t *testing.T) {
	e := startEnv(t)
	s, ifp, l2p := e.agent(t)
	bd := &l2model.BridgeDomain{Name: "bd1", Flood: true, UnknownUnicastFlood: true, Forward: true, Learn: true, MacAge: 5,
		Interfaces: []*l2model.BridgeDomain_Interface{
			{Name: "bvi", BridgedVirtualInterface: true},
			{Name: "p1", SplitHorizonGroup: 1},
			{Name: "p2", SplitHorizonGroup: 1},
		}}
	bdKV := kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey("bd1"), Value: bd}
	commit(t, s, kvscheduler.TxnChange, bdKV, loop("bvi"), loop("p1"))
	if st := stateOf(s, l2plugin.BDMemberKey("bd1", "p2")); st.State != kvscheduler.StatePending {
		t.Fatalf("member p2 is %s without its interface, want PENDING", st.State)
	}
	commit(t, s, kvscheduler.TxnChange, loop("p2"))
	for _, m := range []string{"bvi", "p1", "p2"} {
		if st := stateOf(s, l2plugin.BDMemberKey("bd1", m)); st.State != kvscheduler.StateConfigured {
			t.Fatalf("member %s is %s (%s), want CONFIGURED", m, st.State, st.Error)
		}
	}
	id, ok := l2p.BDID("bd1")
	if !ok || id != 1 {
		t.Fatalf("bd1 got bd_id %d (%v), want the lowest free, 1", id, ok)
	}
	bds := bridgeDomains(t, e)
	if len(bds) != 1 {
		t.Fatalf("VPP has %d bridge domains, want 1", len(bds))
	}
	b := bds[0]
	bvi, _ := ifp.SwIfIndex("bvi")
	if b.BdID != 1 || b.BdTag != "bd1" || !b.Flood || !b.Learn || b.MacAge != 5 || uint32(b.BviSwIfIndex) != bvi || len(b.SwIfDetails) != 3 {
		t.Fatalf("VPP bridge domain %+v does not match bd1", b)
	}
	p1, _ := ifp.SwIfIndex("p1")
	for _, m := range b.SwIfDetails {
		if uint32(m.SwIfIndex) == p1 && m.Shg != 1 {
			t.Fatalf("p1 split-horizon group %d, want 1", m.Shg)
		}
	}

	// A second bridge domain takes the next id; removing a member updates VPP.
	commit(t, s, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey("bd2"), Value: &l2model.BridgeDomain{Name: "bd2"}})
	if id, _ := l2p.BDID("bd2"); id != 2 {
		t.Fatalf("bd2 got bd_id %d, want 2", id)
	}
	bd2 := proto.Clone(bd).(*l2model.BridgeDomain)
	bd2.Interfaces = bd2.Interfaces[:2]
	commit(t, s, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey("bd1"), Value: bd2})
	for _, b := range bridgeDomains(t, e) {
		if b.BdTag == "bd1" && len(b.SwIfDetails) != 2 {
			t.Fatalf("bd1 has %d members after p2 was removed, want 2", len(b.SwIfDetails))
		}
	}

	// Restarted agent: resync with no VPP writes.
	s.Close()
	s2, _, l2p2 := e.agent(t)
	before := e.sim.CallCounts()
	rec := commit(t, s2, kvscheduler.TxnFullResync, bdKV2(bd2), kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey("bd2"), Value: &l2model.BridgeDomain{Name: "bd2"}},
		loop("bvi"), loop("p1"), loop("p2"))
	for k, v := range e.sim.CallCounts() {
		if v > before[k] && !strings.HasSuffix(k, "_dump") && !strings.HasPrefix(k, "control_ping") {
			t.Errorf("resync sent %s ×%d (ops %+v)", k, v-before[k], rec.Ops)
		}
	}
	if id, _ := l2p2.BDID("bd2"); id != 2 {
		t.Fatalf("after restart bd2 maps to bd_id %d, want 2", id)
	}
	if st := stateOf(s2, l2plugin.BDMemberKey("bd1", "p1")); st.State != kvscheduler.StateConfigured {
		t.Fatalf("member p1 after resync is %s, want CONFIGURED", st.State)
	}
}

func bdKV2(bd *l2model.BridgeDomain) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey(bd.GetName()), Value: bd}
}

func TestXConnectResyncAfterAgentRestart(t *testing.T) {
	e := startEnv(t)
	s, _, _ := e.agent(t)
	vals := []kvscheduler.KeyValue{loop("a"), loop("b"), xc("a", "b"), xc("b", "a")}
	commit(t, s, kvscheduler.TxnChange, vals...)
	s.Close()
	s2, _, _ := e.agent(t)
	before := e.sim.CallCounts()
	commit(t, s2, kvscheduler.TxnFullResync, vals...)
	if d := e.sim.CallCounts()["sw_interface_set_l2_xconnect"] - before["sw_interface_set_l2_xconnect"]; d != 0 {
		t.Fatalf("resync re-sent %d xconnects", d)
	}
	if st := stateOf(s2, l2plugin.XConnectKey("b")); st.State != kvscheduler.StateConfigured {
		t.Fatalf("xconnect b after resync is %s, want CONFIGURED", st.State)
	}
	// Dropping an xconnect from desired state on resync removes it from VPP.
	commit(t, s2, kvscheduler.TxnFullResync, vals[:3]...)
	if got := xconnects(t, e); len(got) != 1 {
		t.Fatalf("VPP xconnects %v, want only a→b", got)
	}
}

func TestValidation(t *testing.T) {
	e := startEnv(t)
	s, _, _ := e.agent(t)
	commit(t, s, kvscheduler.TxnChange, xc("a", "a"),
		kvscheduler.KeyValue{Key: l2plugin.BridgeDomainKey("x"), Value: &l2model.BridgeDomain{Name: "x", Interfaces: []*l2model.BridgeDomain_Interface{
			{Name: "i", BridgedVirtualInterface: true}, {Name: "j", BridgedVirtualInterface: true}}}})
	if st := stateOf(s, l2plugin.XConnectKey("a")); st.State != kvscheduler.StateInvalid {
		t.Fatalf("self xconnect is %s, want INVALID", st.State)
	}
	if st := stateOf(s, l2plugin.BridgeDomainKey("x")); st.State != kvscheduler.StateInvalid || !strings.Contains(st.Error, "BVI") {
		t.Fatalf("two-BVI bridge domain is %s (%s), want INVALID naming BVIs", st.State, st.Error)
	}
}
