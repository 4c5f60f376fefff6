package l3plugin_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_neighbor"
	"go.fd.io/govpp/binapi/ip_types"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/l3plugin"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	sim *vppsim.Sim
	mux *govppmux.Mux
	s   *kvscheduler.Scheduler
}

func start(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: filepath.Join(t.TempDir(), "api.sock"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	mux := govppmux.New(govppmux.Options{Socket: sim.SocketPath(), ReconnectMin: 10 * time.Millisecond, Logger: quiet})
	if err := mux.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mux.Close)
	for deadline := time.Now().Add(15 * time.Second); !mux.Connected(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("VPP never connected")
		}
	}
	ifp := ifplugin.New(ifplugin.Options{Conn: mux.Conn(), Logger: quiet})
	l3p := l3plugin.New(l3plugin.Options{Conn: mux.Conn(), IfIndex: ifp, Logger: quiet})
	s := kvscheduler.New(kvscheduler.Options{Logger: quiet, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	t.Cleanup(s.Close)
	if err := ifp.Register(s); err != nil {
		t.Fatal(err)
	}
	if err := l3p.Register(s); err != nil {
		t.Fatal(err)
	}
	mux.AddMessages(append(ifp.Messages(), l3p.Messages()...)...)
	if err := mux.Compatibility(); err != nil {
		t.Fatalf("vppsim lacks messages: %v", err)
	}
	return &env{sim: sim, mux: mux, s: s}
}

func (e *env) commit(t *testing.T, kind kvscheduler.TxnKind, kvs ...kvscheduler.KeyValue) kvscheduler.TxnRecord {
	t.Helper()
	rec, err := e.s.Commit(context.Background(), kvscheduler.Txn{Kind: kind, Values: kvs})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (e *env) state(key string) kvscheduler.ValueStatus {
	st, _ := e.s.StatusOf(key)
	return st
}

func vrf(id uint32, label string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: l3plugin.VrfKey(id, false), Value: &l3model.VrfTable{Id: id, Label: label}}
}

func loopIn(name string, vrf uint32, addr string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: ifplugin.Key(name), Value: &ifmodel.Interface{Name: name, Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true, Vrf: vrf, IpAddresses: []string{addr}}}
}

const routeKey = "config/vpp/v2/route/vrf/10/dst/192.0.2.0/24/gw/198.51.100.2"

func route(weight uint32) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: routeKey, Value: &l3model.Route{VrfId: 10, DstNetwork: "192.0.2.0/24", NextHopAddr: "198.51.100.2", OutgoingInterface: "lo", Weight: weight}}
}

const arpKey = "config/vpp/v2/arp/lo/198.51.100.2"

func arpKV(mac string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: arpKey, Value: &l3model.ARPEntry{Interface: "lo", IpAddress: "198.51.100.2", PhysAddress: mac, Static: true}}
}

func routes(t *testing.T, e *env, table uint32) map[string][]uint8 {
	t.Helper()
	d, err := ip.NewServiceClient(e.mux.Conn()).IPRouteDump(context.Background(), &ip.IPRouteDump{Table: ip.IPTable{TableID: table}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint8{}
	for {
		r, err := d.Recv()
		if err != nil {
			return out
		}
		for _, p := range r.Route.Paths {
			out[r.Route.Prefix.String()] = append(out[r.Route.Prefix.String()], p.Weight)
		}
	}
}

func neighbors(t *testing.T, e *env) map[string]string {
	t.Helper()
	d, err := ip_neighbor.NewServiceClient(e.mux.Conn()).IPNeighborDump(context.Background(), &ip_neighbor.IPNeighborDump{SwIfIndex: ^interface_types.InterfaceIndex(0), Af: ip_types.ADDRESS_IP4})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for {
		n, err := d.Recv()
		if err != nil {
			return out
		}
		out[n.Neighbor.IPAddress.String()] = n.Neighbor.MacAddress.String()
	}
}

func ops(rec kvscheduler.TxnRecord, key string) []kvscheduler.OpKind {
	var out []kvscheduler.OpKind
	for _, o := range rec.Ops {
		if o.Key == key {
			out = append(out, o.Op)
		}
	}
	return out
}

// Values wait PENDING for their VRF and interface, get applied when those
// appear, survive a downstream resync untouched, are recreated on change,
// and go back to PENDING (and out of VPP) when the VRF goes.
func TestRouteArpVrfLifecycle(t *testing.T) {
	e := start(t)
	e.commit(t, kvscheduler.TxnChange, route(0), arpKV("02:00:00:00:aa:01"))
	st := e.state(routeKey)
	if st.State != kvscheduler.StatePending || len(st.Missing) != 2 {
		t.Fatalf("route with neither interface nor VRF: %s missing %v, want PENDING on both", st.State, st.Missing)
	}
	e.commit(t, kvscheduler.TxnChange, loopIn("lo", 10, "198.51.100.1/24"))
	if st := e.state(ifplugin.Key("lo")); st.State != kvscheduler.StatePending || st.Missing[0] != l3plugin.VrfKey(10, false) {
		t.Fatalf("interface in a missing VRF: %s missing %v", st.State, st.Missing)
	}
	e.commit(t, kvscheduler.TxnChange, vrf(10, "blue"))
	for _, k := range []string{routeKey, arpKey, ifplugin.Key("lo"), l3plugin.VrfKey(10, false)} {
		if st := e.state(k); st.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s)", k, st.State, st.Error)
		}
	}
	if w := routes(t, e, 10)["192.0.2.0/24"]; len(w) != 1 || w[0] != 1 {
		t.Fatalf("route in VPP table 10: weights %v, want one path of weight 1", w)
	}
	if n := neighbors(t, e); n["198.51.100.2"] != "02:00:00:00:aa:01" {
		t.Fatalf("neighbors %v", n)
	}

	rec := e.commit(t, kvscheduler.TxnDownstreamResync)
	if len(rec.Ops) != 0 {
		t.Fatalf("resync of an unchanged VPP made operations: %+v", rec.Ops)
	}

	rec = e.commit(t, kvscheduler.TxnChange, route(3), arpKV("02:00:00:00:aa:02"))
	if o := ops(rec, routeKey); !slices.Contains(o, kvscheduler.OpRecreate) || slices.Contains(o, kvscheduler.OpUpdate) {
		t.Fatalf("route weight change: ops %v, want a RECREATE", o)
	}
	if w := routes(t, e, 10)["192.0.2.0/24"]; len(w) != 1 || w[0] != 3 {
		t.Fatalf("after the weight change VPP has paths of weight %v, want [3]", w)
	}
	if n := neighbors(t, e); n["198.51.100.2"] != "02:00:00:00:aa:02" {
		t.Fatalf("neighbor MAC not changed: %v", n)
	}

	e.commit(t, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: l3plugin.VrfKey(10, false)})
	for _, k := range []string{routeKey, arpKey, ifplugin.Key("lo")} {
		if st := e.state(k); st.State != kvscheduler.StatePending {
			t.Fatalf("%s is %s after its VRF went, want PENDING", k, st.State)
		}
	}
	if r := routes(t, e, 10); len(r) != 0 {
		t.Fatalf("table 10 still dumps %v", r)
	}
}

// A route VPP lost (deleted behind the agent's back) is put back by a
// downstream resync; one VPP never had is not reported.
func TestRouteResyncRepairs(t *testing.T) {
	e := start(t)
	e.commit(t, kvscheduler.TxnChange, vrf(10, ""), loopIn("lo", 10, "198.51.100.1/24"), route(0))
	if st := e.state(routeKey); st.State != kvscheduler.StateConfigured {
		t.Fatalf("route %s: %s", st.State, st.Error)
	}
	pf, _ := ip_types.ParsePrefix("192.0.2.0/24")
	if _, err := ip.NewServiceClient(e.mux.Conn()).IPRouteAddDel(context.Background(), &ip.IPRouteAddDel{IsAdd: false, Route: ip.IPRoute{TableID: 10, Prefix: pf}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := routes(t, e, 10)["192.0.2.0/24"]; ok {
		t.Fatal("route not removed behind the agent's back")
	}
	rec := e.commit(t, kvscheduler.TxnDownstreamResync)
	if o := ops(rec, routeKey); len(o) != 1 || o[0] != kvscheduler.OpCreate {
		t.Fatalf("resync ops on the lost route: %v", o)
	}
	if len(routes(t, e, 10)["192.0.2.0/24"]) != 1 {
		t.Fatal("resync did not put the route back")
	}
}

// A table nobody desires (an operator's) survives a resync; a desired
// one VPP lost is made again.
func TestVrfResyncLeavesForeignTables(t *testing.T) {
	e := start(t)
	e.commit(t, kvscheduler.TxnChange, vrf(10, "blue"))
	ipc := ip.NewServiceClient(e.mux.Conn())
	if _, err := ipc.IPTableAddDel(context.Background(), &ip.IPTableAddDel{IsAdd: true, Table: ip.IPTable{TableID: 20, Name: "operator"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.IPTableAddDel(context.Background(), &ip.IPTableAddDel{Table: ip.IPTable{TableID: 10}}); err != nil {
		t.Fatal(err)
	}
	rec := e.commit(t, kvscheduler.TxnDownstreamResync)
	if o := ops(rec, l3plugin.VrfKey(20, false)); len(o) != 0 {
		t.Fatalf("resync touched the operator's table 20: %v", o)
	}
	if o := ops(rec, l3plugin.VrfKey(10, false)); len(o) != 1 || o[0] != kvscheduler.OpCreate {
		t.Fatalf("resync ops on the lost table 10: %v", o)
	}
	d, err := ipc.IPTableDump(context.Background(), &ip.IPTableDump{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint32]string{}
	for {
		tb, err := d.Recv()
		if err != nil {
			break
		}
		if !tb.Table.IsIP6 {
			names[tb.Table.TableID] = tb.Table.Name
		}
	}
	if names[10] != "blue" || names[20] != "operator" {
		t.Fatalf("tables after resync: %v", names)
	}
}

func proxyKV(ranges ...[2]string) kvscheduler.KeyValue {
	v := &l3model.ProxyARP{Interfaces: []*l3model.ProxyARP_Interface{{Name: "lo"}}}
	for _, r := range ranges {
		v.Ranges = append(v.Ranges, &l3model.ProxyARP_Range{FirstIpAddr: r[0], LastIpAddr: r[1]})
	}
	return kvscheduler.KeyValue{Key: l3plugin.ProxyARPKey, Value: v}
}

func proxyRanges(t *testing.T, e *env) []string {
	t.Helper()
	d, err := arp.NewServiceClient(e.mux.Conn()).ProxyArpDump(context.Background(), &arp.ProxyArpDump{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		r, err := d.Recv()
		if err != nil {
			sort.Strings(out)
			return out
		}
		out = append(out, r.Proxy.Low.String()+"-"+r.Proxy.Hi.String())
	}
}

// Proxy ARP: ranges apply at once, the interface part waits for its
// interface; a range change deletes and adds only what changed.
func TestProxyARP(t *testing.T) {
	e := start(t)
	e.commit(t, kvscheduler.TxnChange, proxyKV([2]string{"198.51.100.10", "198.51.100.20"}, [2]string{"198.51.100.30", "198.51.100.40"}))
	if st := e.state(l3plugin.ProxyARPKey); st.State != kvscheduler.StateConfigured {
		t.Fatalf("proxy ARP ranges: %s %s", st.State, st.Error)
	}
	if st := e.state(l3plugin.ProxyARPInterfaceKey("lo")); st.State != kvscheduler.StatePending {
		t.Fatalf("proxy ARP on a missing interface: %s", st.State)
	}
	e.commit(t, kvscheduler.TxnChange, loopIn("lo", 0, "198.51.100.1/24"))
	if st := e.state(l3plugin.ProxyARPInterfaceKey("lo")); st.State != kvscheduler.StateConfigured {
		t.Fatalf("proxy ARP on lo: %s %s", st.State, st.Error)
	}
	if got := proxyRanges(t, e); !slices.Equal(got, []string{"198.51.100.10-198.51.100.20", "198.51.100.30-198.51.100.40"}) {
		t.Fatalf("VPP ranges %v", got)
	}
	if rec := e.commit(t, kvscheduler.TxnDownstreamResync); len(rec.Ops) != 0 {
		t.Fatalf("resync of unchanged proxy ARP: %+v", rec.Ops)
	}
	before := e.sim.CallCounts()["proxy_arp_add_del"]
	rec := e.commit(t, kvscheduler.TxnChange, proxyKV([2]string{"198.51.100.30", "198.51.100.40"}, [2]string{"198.51.100.50", "198.51.100.60"}))
	if o := ops(rec, l3plugin.ProxyARPKey); len(o) != 1 || o[0] != kvscheduler.OpUpdate {
		t.Fatalf("range change ops %v, want one UPDATE", o)
	}
	if n := e.sim.CallCounts()["proxy_arp_add_del"] - before; n != 2 {
		t.Fatalf("range change sent %d proxy_arp_add_del, want 2 (one delete, one add)", n)
	}
	if got := proxyRanges(t, e); !slices.Equal(got, []string{"198.51.100.30-198.51.100.40", "198.51.100.50-198.51.100.60"}) {
		t.Fatalf("VPP ranges after the change %v", got)
	}
	e.commit(t, kvscheduler.TxnChange, kvscheduler.KeyValue{Key: l3plugin.ProxyARPKey})
	if got := proxyRanges(t, e); len(got) != 0 {
		t.Fatalf("ranges left after the value was deleted: %v", got)
	}
}
