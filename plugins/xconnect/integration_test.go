package xconnect_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/l2"
	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/l2plugin"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

func TestCrossConnectRendersInVPP(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := vppsim.Start(ctx, vppsim.Config{Socket: filepath.Join(dir, "api.sock"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	mux := govppmux.New(govppmux.Options{Socket: sim.SocketPath(), ReconnectMin: 10 * time.Millisecond, Logger: quiet})
	if err := mux.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	for deadline := time.Now().Add(15 * time.Second); !mux.Connected(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("VPP never connected")
		}
	}
	ifp := ifplugin.New(ifplugin.Options{Conn: mux.Conn(), Logger: quiet})
	l2p := l2plugin.New(l2plugin.Options{Conn: mux.Conn(), IfIndex: ifp, Logger: quiet})
	s := kvscheduler.New(kvscheduler.Options{Logger: quiet})
	defer s.Close()
	for _, r := range []interface {
		Register(*kvscheduler.Scheduler) error
	}{ifp, l2p, xconnect.New()} {
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
	}

	cc := &vppmeshv1.CrossConnect{Name: "web",
		A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 1, SocketFilename: filepath.Join(dir, "cnf.sock")}}, Mtu: 1500},
		B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: filepath.Join(dir, "vm.sock"), Server: true}}},
	}
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{{Key: xconnect.Key("web"), Value: cc}}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{xconnect.Key("web"), ifplugin.Key("web-a"), ifplugin.Key("web-b"), l2plugin.XConnectKey("web-a"), l2plugin.XConnectKey("web-b")} {
		if st, _ := s.StatusOf(k); st.State != kvscheduler.StateConfigured {
			t.Fatalf("%s is %s (%s), want CONFIGURED", k, st.State, st.Error)
		}
	}
	a, _ := ifp.SwIfIndex("web-a")
	b, _ := ifp.SwIfIndex("web-b")
	got := dumpXC(t, mux)
	if len(got) != 2 || got[a] != b || got[b] != a {
		t.Fatalf("VPP xconnects %v, want web-a(%d) ↔ web-b(%d)", got, a, b)
	}

	// Changing an endpoint re-derives: web-b becomes a memif.
	cc2 := proto.Clone(cc).(*vppmeshv1.CrossConnect)
	cc2.B = &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 2, SocketFilename: filepath.Join(dir, "cnf.sock")}}}
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{{Key: xconnect.Key("web"), Value: cc2}}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.StatusOf(ifplugin.Key("web-b")); st.State != kvscheduler.StateConfigured || st.Value.(*ifmodel.Interface).GetType() != ifmodel.Interface_MEMIF {
		t.Fatalf("web-b after endpoint change: %s %v", st.State, st.Value)
	}
	b2, _ := ifp.SwIfIndex("web-b")
	if got := dumpXC(t, mux); got[a] != b2 || got[b2] != a {
		t.Fatalf("VPP xconnects %v after change, want web-a(%d) ↔ web-b(%d)", got, a, b2)
	}

	// Deleting the cross-connect removes everything it derived.
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{{Key: xconnect.Key("web")}}}); err != nil {
		t.Fatal(err)
	}
	if got := dumpXC(t, mux); len(got) != 0 {
		t.Fatalf("VPP xconnects %v after delete, want none", got)
	}
	if _, ok := ifp.SwIfIndex("web-a"); ok {
		t.Fatal("web-a still exists after the cross-connect was deleted")
	}
}

func dumpXC(t *testing.T, mux *govppmux.Mux) map[uint32]uint32 {
	t.Helper()
	d, err := l2.NewServiceClient(mux.Conn()).L2XconnectDump(context.Background(), &l2.L2XconnectDump{})
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
