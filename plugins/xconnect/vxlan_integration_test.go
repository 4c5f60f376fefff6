package xconnect_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"io"
	"log/slog"
	"net"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/l2plugin"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type stack struct {
	dir string
	mux *govppmux.Mux
	s   *kvscheduler.Scheduler
	ifp *ifplugin.Plugin
}

// startStack connects the interface, L2 and cross-connect plugins on one
// scheduler to tg (vppsim without packet I/O, or FD.io VPP).
func startStack(t *testing.T, tg *vpptarget.Target) *stack {
	t.Helper()
	dir := tg.Dir
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mux := govppmux.New(govppmux.Options{Socket: tg.APISocket, ReconnectMin: 10 * time.Millisecond, Logger: quiet})
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
	l2p := l2plugin.New(l2plugin.Options{Conn: mux.Conn(), IfIndex: ifp, Logger: quiet})
	s := kvscheduler.New(kvscheduler.Options{Logger: quiet, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	t.Cleanup(s.Close)
	for _, r := range []interface {
		Register(*kvscheduler.Scheduler) error
	}{ifp, l2p, xconnect.New()} {
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	mux.AddMessages(ifp.Messages()...)
	if err := mux.Compatibility(); err != nil {
		t.Fatalf("VPP lacks messages: %v", err)
	}
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnFullResync}); err != nil {
		t.Fatal(err)
	}
	return &stack{dir: dir, mux: mux, s: s, ifp: ifp}
}

// onEach runs fn against vppsim and FD.io VPP (vpptarget: VPP_IMPL).
func onEach(t *testing.T, fn func(t *testing.T, st *stack)) {
	vpptarget.ForEach(t, vpptarget.Options{SimNoPackets: true, Logger: quiet}, func(t *testing.T, tg *vpptarget.Target) {
		fn(t, startStack(t, tg))
	})
}

func (st *stack) put(t *testing.T, kvs ...kvscheduler.KeyValue) {
	t.Helper()
	if _, err := st.s.Commit(context.Background(), kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: kvs}); err != nil {
		t.Fatal(err)
	}
}

func (st *stack) state(key string) kvscheduler.ValueStatus {
	s, _ := st.s.StatusOf(key)
	return s
}

func (st *stack) tunnels(t *testing.T) []*vxlan.VxlanTunnelV2Details {
	t.Helper()
	d, err := vxlan.NewServiceClient(st.mux.Conn()).VxlanTunnelV2Dump(context.Background(), &vxlan.VxlanTunnelV2Dump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		t.Fatal(err)
	}
	var out []*vxlan.VxlanTunnelV2Details
	for {
		x, err := d.Recv()
		if err != nil {
			return out
		}
		out = append(out, x)
	}
}

// uplink is the interface tunnels take their source from: a loopback with
// the addresses (an AF_PACKET uplink behaves the same; test/e2e uses one).
func uplink(name string, addrs ...string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: ifplugin.Key(name), Value: &ifmodel.Interface{Name: name, Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true,
		IpAddresses: addrs}}
}

func vxlanXC(dir, name string, memifID uint32, remote string, vni uint32, up string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: xconnect.Key(name), Value: &vppmeshv1.CrossConnect{Name: name,
		A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: memifID, SocketFilename: filepath.Join(dir, "cnf.sock")}}},
		B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{Vxlan: &vppmeshv1.VxlanEnd{Remote: remote, Vni: vni, Uplink: up}}},
	}}
}

// TestCrossConnectVxlanEnd: a vxlan end renders as a VXLAN tunnel from the
// uplink's address, cross-connected with the memif; it waits for its uplink,
// and deleting the key removes the tunnel.
func TestCrossConnectVxlanEnd(t *testing.T) { onEach(t, testCrossConnectVxlanEnd) }

func testCrossConnectVxlanEnd(t *testing.T, st *stack) {
	// The cross-connect first: its tunnel waits for the uplink.
	st.put(t, vxlanXC(st.dir, "east", 1, "198.51.100.2", 5001, "up0"))
	if s := st.state(ifplugin.Key("east-b")); s.State != kvscheduler.StatePending || len(s.Missing) != 1 || s.Missing[0] != ifplugin.Key("up0") {
		t.Fatalf("tunnel without uplink: %s missing %v, want PENDING on %s", s.State, s.Missing, ifplugin.Key("up0"))
	}
	st.put(t, uplink("up0", "198.51.100.1/24"))
	for _, k := range []string{xconnect.Key("east"), ifplugin.Key("east-a"), ifplugin.Key("east-b"), l2plugin.XConnectKey("east-a"), l2plugin.XConnectKey("east-b")} {
		if s := st.state(k); s.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s), want CONFIGURED", k, s.State, s.Error)
		}
	}
	tuns := st.tunnels(t)
	if len(tuns) != 1 || tuns[0].SrcAddress.String() != "198.51.100.1" || tuns[0].DstAddress.String() != "198.51.100.2" || tuns[0].Vni != 5001 || tuns[0].DecapNextIndex != 1 {
		t.Fatalf("tunnels %+v, want one 198.51.100.1 → 198.51.100.2 vni 5001 into l2-input", tuns)
	}
	a, _ := st.ifp.SwIfIndex("east-a")
	b, _ := st.ifp.SwIfIndex("east-b")
	if b != uint32(tuns[0].SwIfIndex) {
		t.Fatalf("east-b is sw_if_index %d, the tunnel %d", b, tuns[0].SwIfIndex)
	}
	if got := dumpXC(t, st.mux); got[a] != b || got[b] != a {
		t.Fatalf("VPP xconnects %v, want east-a(%d) ↔ east-b(%d)", got, a, b)
	}

	// A resync finds nothing to do: the dumped tunnel matches src_interface.
	rec, err := st.s.Commit(context.Background(), kvscheduler.Txn{Kind: kvscheduler.TxnDownstreamResync})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Ops) != 0 {
		t.Fatalf("resync ran %d operations, want none: %+v", len(rec.Ops), rec.Ops)
	}

	st.put(t, kvscheduler.KeyValue{Key: xconnect.Key("east")})
	if tuns := st.tunnels(t); len(tuns) != 0 {
		t.Fatalf("tunnels after delete: %+v", tuns)
	}
	if len(dumpXC(t, st.mux)) != 0 {
		t.Fatal("xconnects left after delete")
	}
}

// TestCrossConnectVxlanBadInput: each bad cross-connect gets its own error
// and leaves the others alone.
func TestCrossConnectVxlanBadInput(t *testing.T) { onEach(t, testCrossConnectVxlanBadInput) }

func testCrossConnectVxlanBadInput(t *testing.T, st *stack) {
	st.put(t, uplink("up0", "198.51.100.1/24"), uplink2("bare"),
		vxlanXC(st.dir, "good", 1, "198.51.100.2", 7, "up0"))
	st.put(t,
		vxlanXC(st.dir, "clash", 2, "198.51.100.2", 7, "up0"),
		vxlanXC(st.dir, "range", 3, "198.51.100.2", 1<<24, "up0"),
		vxlanXC(st.dir, "zero", 4, "198.51.100.2", 0, "up0"),
		vxlanXC(st.dir, "badip", 5, "198.51.100.x", 8, "up0"),
		vxlanXC(st.dir, "noaddr", 6, "198.51.100.2", 9, "bare"),
		vxlanXC(st.dir, "nouplink", 7, "198.51.100.2", 10, "missing0"),
		vxlanXC(st.dir, "other", 8, "198.51.100.3", 7, "up0"), // same VNI, other node: fine
	)
	for name, want := range map[string]struct {
		state kvscheduler.State
		err   string
	}{
		"good":     {kvscheduler.StateConfigured, ""},
		"other":    {kvscheduler.StateConfigured, ""},
		"clash":    {kvscheduler.StateFailed, `vni 7 to 198.51.100.2 over up0 is used by cross-connect "good"`},
		"range":    {kvscheduler.StateInvalid, "vxlan.vni 16777216 is out of range"},
		"zero":     {kvscheduler.StateInvalid, "vxlan.vni is missing"},
		"badip":    {kvscheduler.StateInvalid, "is not an IP address"},
		"nouplink": {kvscheduler.StateConfigured, ""},
		"noaddr":   {kvscheduler.StateConfigured, ""},
	} {
		s := st.state(xconnect.Key(name))
		if s.State != want.state || !strings.Contains(s.Error, want.err) {
			t.Errorf("%s: %s %q, want %s containing %q", name, s.State, s.Error, want.state, want.err)
		}
	}
	// The parents of these are fine; their tunnels say what is wrong.
	if s := st.state(ifplugin.Key("nouplink-b")); s.State != kvscheduler.StatePending || len(s.Missing) != 1 {
		t.Errorf("nouplink-b: %s missing %v, want PENDING on the uplink", s.State, s.Missing)
	}
	if s := st.state(ifplugin.Key("noaddr-b")); s.State != kvscheduler.StateFailed || !strings.Contains(s.Error, `vxlan src_interface "bare" has no IPv4 address`) {
		t.Errorf("noaddr-b: %s %q, want FAILED: no IPv4 address", s.State, s.Error)
	}
	if n := len(st.tunnels(t)); n != 2 {
		t.Errorf("%d tunnels in VPP, want 2 (good, other)", n)
	}
	// Once the holder is gone, the clashing key applies by itself (retry).
	st.put(t, kvscheduler.KeyValue{Key: xconnect.Key("good")})
	deadline := time.Now().Add(5 * time.Second)
	for st.state(ifplugin.Key("clash-b")).State != kvscheduler.StateConfigured {
		if time.Now().After(deadline) {
			s := st.state(xconnect.Key("clash"))
			b := st.state(ifplugin.Key("clash-b"))
			t.Fatalf("clash after good was deleted: %s %q; clash-b %s %q %v", s.State, s.Error, b.State, b.Error, b.Missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uplink2 is an uplink without any address (a loopback).
func uplink2(name string) kvscheduler.KeyValue {
	return kvscheduler.KeyValue{Key: ifplugin.Key(name), Value: &ifmodel.Interface{Name: name, Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Enabled: true}}
}

// TestUplinkAddressInUseByTunnel: the uplink's address cannot be taken away
// under a tunnel that uses it; the change fails naming the tunnel and
// applies by itself once the cross-connect is deleted.
func TestUplinkAddressInUseByTunnel(t *testing.T) { onEach(t, testUplinkAddressInUseByTunnel) }

func testUplinkAddressInUseByTunnel(t *testing.T, st *stack) {
	st.put(t, uplink("up0", "198.51.100.1/24"), vxlanXC(st.dir, "east", 1, "198.51.100.2", 9, "up0"))
	if s := st.state(ifplugin.Key("east-b")); s.State != kvscheduler.StateConfigured {
		t.Fatalf("tunnel: %s %q", s.State, s.Error)
	}
	st.put(t, uplink("up0", "198.51.100.9/24"))
	s := st.state(ifplugin.Key("up0"))
	if s.State != kvscheduler.StateFailed || !strings.Contains(s.Error, "east-b (source 198.51.100.1)") {
		t.Fatalf("uplink readdressed under a tunnel: %s %q, want FAILED naming east-b", s.State, s.Error)
	}
	if tuns := st.tunnels(t); len(tuns) != 1 || tuns[0].SrcAddress.String() != "198.51.100.1" {
		t.Fatalf("tunnels %+v", tuns)
	}
	st.put(t, kvscheduler.KeyValue{Key: xconnect.Key("east")})
	deadline := time.Now().Add(5 * time.Second)
	for st.state(ifplugin.Key("up0")).State != kvscheduler.StateConfigured {
		if time.Now().After(deadline) {
			s := st.state(ifplugin.Key("up0"))
			t.Fatalf("uplink after the tunnel was deleted: %s %q", s.State, s.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Adding an address next to the one in use is fine.
	st.put(t, uplink("up0", "198.51.100.9/24"), vxlanXC(st.dir, "west", 2, "198.51.100.2", 9, "up0"))
	st.put(t, uplink("up0", "198.51.100.9/24", "203.0.113.1/24"))
	if s := st.state(ifplugin.Key("up0")); s.State != kvscheduler.StateConfigured {
		t.Fatalf("adding an address: %s %q", s.State, s.Error)
	}
}

// TestUntaggedTunnelInTheWayIsReplaced: a tunnel with the desired key but no
// tag (a create VPP carried out after the agent stopped waiting) is deleted
// and the desired one created, instead of failing forever with "tunnel
// already exists".
func TestUntaggedTunnelInTheWayIsReplaced(t *testing.T) {
	onEach(t, testUntaggedTunnelInTheWayIsReplaced)
}

func testUntaggedTunnelInTheWayIsReplaced(t *testing.T, st *stack) {
	req := &vxlan.VxlanAddDelTunnelV3{IsAdd: true, Instance: ^uint32(0), DecapNextIndex: ^uint32(0), Vni: 11,
		SrcAddress: ip_types.NewAddress(net.ParseIP("198.51.100.1").To4()), DstAddress: ip_types.NewAddress(net.ParseIP("198.51.100.2").To4())}
	if _, err := vxlan.NewServiceClient(st.mux.Conn()).VxlanAddDelTunnelV3(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	st.put(t, uplink("up0", "198.51.100.1/24"), vxlanXC(st.dir, "east", 1, "198.51.100.2", 11, "up0"))
	if s := st.state(ifplugin.Key("east-b")); s.State != kvscheduler.StateConfigured {
		t.Fatalf("tunnel: %s %q", s.State, s.Error)
	}
	tuns := st.tunnels(t)
	idx, _ := st.ifp.SwIfIndex("east-b")
	if len(tuns) != 1 || uint32(tuns[0].SwIfIndex) != idx {
		t.Fatalf("tunnels %+v, want only east-b (%d)", tuns, idx)
	}
}
